// Command pause is the sandbox ("pause") image of the e2e cluster: it holds a pod's namespaces open and exits
// when signalled, like the upstream pause container, built here from Go because no registry is available.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	// As PID 1 of a shared PID namespace it must reap orphans, or they stay zombies.
	reap := make(chan os.Signal, 1)
	signal.Notify(reap, syscall.SIGCHLD)
	for {
		select {
		case <-sig:
			return
		case <-reap:
			for {
				var ws syscall.WaitStatus
				if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
