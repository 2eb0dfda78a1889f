package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

func crStatus(args []string) error {
	fs := flag.NewFlagSet("crstatus", flag.ContinueOnError)
	var gvr schema.GroupVersionResource
	fs.StringVar(&gvr.Group, "group", "", "API group of the resource")
	fs.StringVar(&gvr.Version, "version", "v1alpha1", "API version of the resource")
	fs.StringVar(&gvr.Resource, "resource", "", "resource (plural)")
	ns := fs.String("namespace", "", "namespace (default: the pod's)")
	name := fs.String("name", "", "object name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if gvr.Resource == "" || *name == "" {
		return errors.New("-resource and -name are required")
	}
	// The ordinary in-cluster path: KUBERNETES_SERVICE_HOST (the kubernetes Service) and the pod's token.
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	if *ns == "" {
		data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return fmt.Errorf("read pod namespace: %w", err)
		}
		*ns = strings.TrimSpace(string(data))
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := client.Resource(gvr).Namespace(*ns)
	obj, err := res.Get(ctx, *name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get %s %s/%s: %w", gvr.Resource, *ns, *name, err)
	}
	// Echo a spec field back, so that a test sees the object was really read.
	msg, _, _ := unstructured.NestedString(obj.Object, "spec", "message")
	if err := unstructured.SetNestedMap(obj.Object, map[string]any{
		"phase": "Completed", "echo": msg, "server": cfg.Host,
	}, "status"); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	if _, err := res.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of %s %s/%s: %w", gvr.Resource, *ns, *name, err)
	}
	result(fmt.Sprintf("%s %s/%s: status written through %s", gvr.Resource, *ns, *name, cfg.Host))
	return nil
}
