// Command fakehub runs a local Docker Hub (package test/upstream) for
// benchmark scripts: it starts the upstream, pushes the chosen test images
// under Docker Hub-like names, prints one line of JSON, and runs until
// SIGINT or SIGTERM, then stops the registry and deletes its storage.
//
//	go run ./test/upstream/cmd/fakehub -images small,index,debian,large -large-mib 300 -large-layers 4
//
// The line looks like
//
//	{"pid":123,"url":"http://127.0.0.1:41234","registry":"127.0.0.1:40321","cdn":"http://127.0.0.1:43210",
//	 "digests":{"library/busybox:latest":"sha256:..."},"images":[{"name":"library/busybox","tag":"latest",...}]}
//
// url is the front (point the pull-through cache there), registry the real
// registry without auth, pid this process, and counts the URL of a read-only
// JSON view of the request counters, http://127.0.0.1:port/_counts (see
// counts.go). With -moving N the images library/farm-0:latest to
// library/farm-<N-1>:latest move to a new digest every -move-every (the ready
// line has their first generation), and -budget N answers manifest GETs
// beyond N per -budget-window with 429, as Docker Hub's pull rate limit
// does (test/upstream/budget.go). fakehub also stops when its parent dies, so killing "go run"
// (which does not pass SIGTERM on) or the script that started it stops it
// too.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exitWithParent()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fakehub:", err)
		stop()
		os.Exit(1)
	}
}

// ready is the JSON line fakehub prints once the images are pushed.
type ready struct {
	PID      int               `json:"pid"`
	URL      string            `json:"url"`
	Registry string            `json:"registry"`
	CDN      string            `json:"cdn"`
	Digests  map[string]string `json:"digests"` // "name:tag" -> manifest digest
	Images   []upstream.Image  `json:"images"`
	// Counts is the URL of the read-only request counters (counts.go).
	Counts string `json:"counts"`
}

// run parses args, starts the upstream, pushes the images, writes the ready
// line to stdout, and blocks until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakehub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	images := fs.String("images", "small,index,debian", "comma-separated images to push: small, index, debian, large, tags")
	largeMiB := fs.Int("large-mib", 300, "total size of the large image, in MiB")
	largeLayers := fs.Int("large-layers", 4, "number of layers of the large image")
	tags := fs.Int("tags", 50, "number of tags of library/tags (images: tags)")
	tagMiB := fs.Int("tag-mib", 1, "size of the random layer of each tag of library/tags, in MiB")
	username := fs.String("username", "", "require these HTTP Basic credentials at /token (default: anonymous tokens)")
	password := fs.String("password", "", "password for -username")
	budget := fs.Int("budget", 0, "Docker Hub-like pull budget: manifest GETs allowed per -budget-window, answered 429 beyond (0 = no limit)")
	budgetWindow := fs.Duration("budget-window", 6*time.Hour, "the rolling window of -budget (Docker Hub's is 6h)")
	moving := fs.Int("moving", 0, "also push this many moving images, library/farm-0:latest and on, whose tags move to a new digest every -move-every")
	moveEvery := fs.Duration("move-every", 5*time.Second, "how often the moving tags move (0 = never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	u, err := upstream.Start(ctx, upstream.Options{
		Username: *username, Password: *password, Logger: log,
		PullBudget: upstream.PullBudget{Limit: *budget, Window: *budgetWindow},
	})
	if err != nil {
		return err
	}
	defer u.Close()

	out := ready{PID: os.Getpid(), URL: u.URL(), Registry: u.RegistryAddr(), CDN: u.CDNURL(), Digests: map[string]string{}}
	countsURL, stopCounts, err := serveCounts(u, log)
	if err != nil {
		return err
	}
	defer stopCounts()
	out.Counts = countsURL
	for _, name := range strings.Split(*images, ",") {
		var pushed []upstream.Image
		switch strings.TrimSpace(name) {
		case "small":
			pushed, err = one(u.PushSmall(ctx, "library/busybox", "latest"))
		case "index":
			pushed, err = one(u.PushIndex(ctx, "library/multi", "latest"))
		case "debian":
			pushed, err = u.PushDebianLike(ctx, "library/debian")
		case "large":
			pushed, err = one(u.PushLarge(ctx, "library/large", "latest", *largeMiB, *largeLayers))
		case "tags":
			pushed, err = u.PushTags(ctx, "library/tags", *tags, *tagMiB)
		case "":
			continue
		default:
			return fmt.Errorf("unknown image %q (want small, index, debian, large or tags)", name)
		}
		if err != nil {
			return err
		}
		for _, img := range pushed {
			out.Digests[img.Ref()] = img.ManifestDigest
			out.Images = append(out.Images, img)
		}
	}
	if *moving > 0 {
		pushed, err := u.PushMoving(ctx, *moving, *moveEvery)
		if err != nil {
			return err
		}
		for _, img := range pushed {
			out.Digests[img.Ref()] = img.ManifestDigest
			out.Images = append(out.Images, img)
		}
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// one turns a single pushed image into a list.
func one(img upstream.Image, err error) ([]upstream.Image, error) {
	return []upstream.Image{img}, err
}
