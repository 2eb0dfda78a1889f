// Command kubectl-pxb is the pxb kubectl plugin.
package main

func main() {}
