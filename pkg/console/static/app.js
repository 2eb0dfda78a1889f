// Live updates: the server pushes each change of the page's objects as an "update" event, whose row
// replaces, joins or leaves the page. The browser never polls.
(function () {
  "use strict";
  var live = document.getElementById("live");
  // Forms in rows pushed by the server carry no CSRF token of their own: each POST gets the session's.
  var csrf = document.querySelector('meta[name="csrf"]').content;
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.method.toLowerCase() === "post" && !form.elements.csrf) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "csrf";
      input.value = csrf;
      form.appendChild(input);
    }
  });
  var es = new EventSource("/events?page=" + encodeURIComponent(document.body.dataset.page));
  es.addEventListener("ready", function () {
    live.textContent = "live";
    document.body.dataset.live = "on";
  });
  es.onerror = function () {
    live.textContent = "offline";
    document.body.dataset.live = "off";
  };
  es.addEventListener("update", function (e) {
    var u = JSON.parse(e.data);
    var el = document.getElementById(u.id);
    if (u.remove) {
      if (el) el.remove();
      return;
    }
    var tpl = document.createElement("template");
    tpl.innerHTML = u.html.trim();
    var fresh = tpl.content.firstElementChild;
    if (el) {
      el.replaceWith(fresh);
    } else if (u.parent) {
      var parent = document.getElementById(u.parent);
      if (parent) parent.prepend(fresh);
    }
  });
})();
