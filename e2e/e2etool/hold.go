package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// hold is an application container for volume tests: it fails at once when a file it needs is missing (so a
// pod started on a volume that was not filled yet restarts, which a test sees in its restart count), and
// otherwise runs until it is stopped.
func hold(args []string) error {
	fset := flag.NewFlagSet("hold", flag.ContinueOnError)
	require := fset.String("require", "", "file that must exist at start")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *require != "" {
		if _, err := os.Lstat(*require); err != nil {
			return fmt.Errorf("required file: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("holding")
	<-ctx.Done()
	return nil
}
