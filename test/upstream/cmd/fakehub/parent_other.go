//go:build !linux

package main

// exitWithParent does nothing where PR_SET_PDEATHSIG does not exist.
func exitWithParent() {}
