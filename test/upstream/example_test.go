package upstream_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// Start an upstream, push an image, point the cache at URL(), then check
// what reached "Docker Hub".
func ExampleStart() {
	ctx := context.Background()
	hub, err := upstream.Start(ctx, upstream.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()

	img, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		log.Fatal(err)
	}
	hub.Reset()
	// ... pull library/busybox:latest through the cache, with hub.URL() as
	// its remote ...
	for _, b := range img.Blobs() {
		fmt.Println(b.Digest, hub.BlobGets(b.Digest), hub.CDNGets(b.Digest))
	}
	fmt.Println(hub.Counts().CDNAuthorization) // must stay 0
}
