// Command pxb-job runs pxb's work inside the cluster, one subcommand per job kind.
package main

func main() {}
