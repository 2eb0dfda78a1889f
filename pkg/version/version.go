// Package version holds the build's version, set by the linker.
package version

// Version is replaced at build time with -ldflags "-X github.com/pxb-dev/pxb/pkg/version.Version=...".
var Version = "dev"
