package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// mark creates a file (or, with -remove, removes it, failing when it is missing): a pre-exec or post-exec
// rule's foreground command, whose effect a test finds in the backed-up volume.
func mark(args []string) error {
	fset := flag.NewFlagSet("mark", flag.ContinueOnError)
	file := fset.String("file", "", "file to create or remove")
	remove := fset.Bool("remove", false, "remove the file instead")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-file is required")
	}
	if *remove {
		if err := os.Remove(*file); err != nil {
			return err
		}
		fmt.Println("removed", *file)
		return nil
	}
	if err := os.WriteFile(*file, []byte("marked\n"), 0o644); err != nil {
		return err
	}
	fmt.Println("marked", *file)
	return nil
}

// lock stands for a session that holds a lock while the volumes are snapshotted (a rule's background
// command): it creates the file, prints a line once it has, and removes the file when its standard input
// closes.
func lock(args []string) error {
	fset := flag.NewFlagSet("lock", flag.ContinueOnError)
	file := fset.String("file", "", "file that exists while the lock is held")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("-file is required")
	}
	if err := os.WriteFile(*file, []byte("locked\n"), 0o644); err != nil {
		return err
	}
	fmt.Println("locked", *file)
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return err
	}
	if err := os.Remove(*file); err != nil {
		return err
	}
	fmt.Println("released", *file)
	return nil
}
