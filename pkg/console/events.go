package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// update is one change pushed to a page: the element with ID is replaced by HTML, or added to the element
// Parent when the page has none, or removed when Remove.
type update struct {
	ID     string `json:"id"`
	HTML   string `json:"html,omitempty"`
	Parent string `json:"parent,omitempty"`
	Remove bool   `json:"remove,omitempty"`
}

// subscriber is one page's event stream; page renders what a change means to that page.
type subscriber struct {
	ch   chan update
	page func(c *cluster, kind, key string) []update
}

// hub fans the clusters' changes out to the open pages.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

func (h *hub) subscribe(page func(c *cluster, kind, key string) []update) *subscriber {
	s := &subscriber{ch: make(chan update, 256), page: page}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// changed tells every page that the object of kind under key changed in cluster c.
func (s *Server) changed(c *cluster, kind, key string) {
	s.hub.mu.Lock()
	subs := make([]*subscriber, 0, len(s.hub.subs))
	for sub := range s.hub.subs {
		subs = append(subs, sub)
	}
	s.hub.mu.Unlock()
	for _, sub := range subs {
		for _, u := range sub.page(c, kind, key) {
			select {
			case sub.ch <- u:
			default:
				// A page that does not read its stream misses updates rather than stalling the watch; a
				// reload shows the current state.
			}
		}
	}
}

// events streams the changes of the page that opened it (its path and query in ?page=) as server-sent
// events, until the page goes away or the console stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	page, err := s.pageUpdates(r.URL.Query().Get("page"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sub := s.hub.subscribe(page)
	defer s.hub.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	// The page knows from this event that it is live.
	fmt.Fprint(w, "event: ready\ndata: {}\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case u := <-sub.ch:
			data, err := json.Marshal(u)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "event: update\ndata: %s\n\n", data); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
