//go:build !unix

package main

import "os"

// terminalWidth is unknown here: lines are not truncated.
func terminalWidth(*os.File) int { return 0 }
