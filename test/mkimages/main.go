// Command mkimages builds the offline busybox test image (see package
// testimage) under _output/images/busybox, unless it is already current.
package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/testutil"
)

func main() {
	p, err := testutil.EnsureImages()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimages:", err)
		os.Exit(1)
	}
	fmt.Printf("bundle:         %s\noci layout:     %s\ndocker-archive: %s\n", p.Bundle, p.OCILayout, p.DockerArchive)
}
