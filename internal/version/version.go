// Package version holds the build's version, stamped by the Makefile from git.
package version

// Version is set at link time with -X; "dev" for plain go builds.
var Version = "dev"
