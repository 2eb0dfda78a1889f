// Command e2etool runs inside the e2e cluster's test pods (the images have no shell):
//
//	e2etool crstatus -group G -resource R -name N   read a custom resource through the in-cluster config and write its status
//	e2etool write -dir D -seed S -files N -size B    write a deterministic dataset of N files of B bytes into D
//	e2etool checksum -dir D                          print one SHA-256 over every path, mode and content under D
//	e2etool get -url U                               print the status code and the start of the body of a GET
//	e2etool rich -dir D -seed S -small N -large B    write the rich dataset (every kind of entry; see tree.go) as root
//	e2etool change -dir D -percent P -seed S         rewrite about P% of a rich dataset's bytes in place
//	e2etool manifest -dir D                          print one line per entry under D (type, mode, owner, mtime, size,
//	                                                 SHA-256, link target, hard-link group, sparseness) and a summary
//	e2etool hold [-require F]                        run until stopped; fail at once when F does not exist
//	e2etool mark -file F [-remove]                   create F (or remove it): a rule's command
//	e2etool lock -file F                             create F, print a line, remove F when stdin closes: a
//	                                                 rule's background command
//
// write, checksum and get also put their result in the termination message, where tests read it from the pod
// status. manifest (and rich or change with -manifest) print the manifest on stdout, too long for a termination
// message, which carries its SHA-256 and summary instead.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2etool crstatus|write|checksum|get|rich|change|manifest|hold|mark|lock|disk [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "crstatus":
		err = crStatus(os.Args[2:])
	case "write":
		err = writeDataset(os.Args[2:])
	case "checksum":
		err = checksum(os.Args[2:])
	case "get":
		err = httpGet(os.Args[2:])
	case "rich":
		err = writeRich(os.Args[2:])
	case "change":
		err = changeTree(os.Args[2:])
	case "manifest":
		err = manifest(os.Args[2:])
	case "hold":
		err = hold(os.Args[2:])
	case "mark":
		err = mark(os.Args[2:])
	case "lock":
		err = lock(os.Args[2:])
	case "disk":
		err = disk(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2etool:", err)
		os.Exit(1)
	}
}

// result prints s and leaves it as the container's termination message.
func result(s string) {
	fmt.Println(s)
	_ = os.WriteFile("/dev/termination-log", []byte(s), 0o644)
}
