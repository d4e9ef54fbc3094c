// Command benchtasks measures one running pulpgo server: the round trip of an asynchronous
// create (POST a container distribution, then poll its task until it is completed) and the
// throughput of a paginated list. scripts/bench-tasks.sh builds the server, starts it with each
// engine and runs this command against it.
//
//	benchtasks -url http://127.0.0.1:24817 -label embedded
//
// Progress goes to standard error; the result is one tab-separated line on standard output:
//
//	label  creates  p50_ms  p90_ms  p99_ms  max_ms  list_req_per_s  list_p50_ms  list_errors
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// config is what the flags say.
type config struct {
	url, label, user, password string
	creates, clients           int
	poll, duration, taskWait   time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "url", "http://127.0.0.1:24817", "base URL of the server")
	flag.StringVar(&cfg.label, "label", "server", "name of this run in the result line")
	flag.StringVar(&cfg.user, "user", "admin", "API user")
	flag.StringVar(&cfg.password, "password", "password", "API password")
	flag.IntVar(&cfg.creates, "creates", 200, "container distributions to create, one after the other")
	flag.DurationVar(&cfg.poll, "poll", 2*time.Millisecond, "interval between two polls of a task")
	flag.DurationVar(&cfg.taskWait, "task-timeout", 30*time.Second, "longest wait for one task")
	flag.IntVar(&cfg.clients, "clients", 8, "concurrent clients of the list load")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of the list load")
	flag.Parse()

	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "benchtasks:", err)
		os.Exit(1)
	}
}

// run measures the server and prints the result line.
func run(ctx context.Context, cfg config) error {
	c := &client{
		base: cfg.url, user: cfg.user, password: cfg.password,
		http: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients + 2},
		},
	}
	trips, err := createRoundTrips(ctx, c, cfg)
	if err != nil {
		return err
	}
	rps, listP50, listErrs, err := listLoad(ctx, c, cfg)
	if err != nil {
		return err
	}
	slices.Sort(trips)
	fmt.Printf("%s\t%d\t%s\t%s\t%s\t%s\t%.0f\t%s\t%d\n", cfg.label, len(trips),
		ms(quantile(trips, 0.50)), ms(quantile(trips, 0.90)), ms(quantile(trips, 0.99)),
		ms(trips[len(trips)-1]), rps, ms(listP50), listErrs)
	return nil
}

// createRoundTrips creates cfg.creates distributions one by one and returns, for each, the
// time from sending the POST to receiving the first task poll that says completed.
func createRoundTrips(ctx context.Context, c *client, cfg config) ([]time.Duration, error) {
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	trips := make([]time.Duration, 0, cfg.creates)
	for i := range cfg.creates {
		name := fmt.Sprintf("bench-%s-%d", run, i)
		start := time.Now()
		var accepted struct {
			Task string `json:"task"`
		}
		body := map[string]string{"name": name, "base_path": name}
		if err := c.do(ctx, http.MethodPost, "/pulp/api/v3/distributions/container/container/", body, http.StatusAccepted, &accepted); err != nil {
			return nil, fmt.Errorf("create distribution %s: %w", name, err)
		}
		if accepted.Task == "" {
			return nil, fmt.Errorf("create distribution %s: no task in the answer", name)
		}
		if err := waitCompleted(ctx, c, accepted.Task, cfg.poll, cfg.taskWait); err != nil {
			return nil, fmt.Errorf("create distribution %s: %w", name, err)
		}
		trips = append(trips, time.Since(start))
		if (i+1)%50 == 0 {
			fmt.Fprintf(os.Stderr, "%s: %d distributions created\n", cfg.label, i+1)
		}
	}
	return trips, nil
}

// waitCompleted polls the task at href every poll (counted from the start of the previous
// poll) until it is completed; it fails on failed or canceled, or after timeout.
func waitCompleted(ctx context.Context, c *client, href string, poll, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		started := time.Now()
		var task struct {
			State string          `json:"state"`
			Error json.RawMessage `json:"error"`
		}
		if err := c.do(ctx, http.MethodGet, href, nil, http.StatusOK, &task); err != nil {
			return fmt.Errorf("poll %s: %w", href, err)
		}
		switch task.State {
		case "completed":
			return nil
		case "failed", "canceled", "skipped":
			return fmt.Errorf("task %s %s: %s", href, task.State, task.Error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s still %s after %s", href, task.State, timeout)
		}
		if wait := poll - time.Since(started); wait > 0 {
			time.Sleep(wait)
		}
	}
}

// listLoad runs cfg.clients loops of GET list?limit=25 for cfg.duration and returns the rate
// of 200 answers, their median latency and the number of other outcomes.
func listLoad(ctx context.Context, c *client, cfg config) (rps float64, p50 time.Duration, errs int64, err error) {
	const path = "/pulp/api/v3/distributions/container/container/?limit=25"
	// One request first, so that a broken endpoint fails loudly instead of counting errors.
	var page struct {
		Count   int               `json:"count"`
		Results []json.RawMessage `json:"results"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK, &page); err != nil {
		return 0, 0, 0, fmt.Errorf("list: %w", err)
	}
	if page.Count < cfg.creates || len(page.Results) != min(25, page.Count) {
		return 0, 0, 0, fmt.Errorf("list: count %d with %d results, want at least %d with 25", page.Count, len(page.Results), cfg.creates)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var (
		ok, bad   atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range cfg.clients {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				code, err := c.get(ctx, path)
				switch {
				case ctx.Err() != nil:
				case err == nil && code == http.StatusOK:
					ok.Add(1)
					mine = append(mine, time.Since(t0))
				default:
					bad.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	fmt.Fprintf(os.Stderr, "%s: %d list requests in %s with %d clients\n", cfg.label, ok.Load(), elapsed.Round(time.Millisecond), cfg.clients)
	return float64(ok.Load()) / elapsed.Seconds(), quantile(latencies, 0.5), bad.Load(), nil
}

// client talks JSON to the API with basic auth.
type client struct {
	base, user, password string
	http                 *http.Client
}

// do sends a JSON request and decodes the answer into out; any status but want is an error.
func (c *client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// get sends one GET and reads the whole answer, returning its status.
func (c *client) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(c.user, c.password)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return 0, err
	}
	return resp.StatusCode, nil
}

// quantile returns the q-quantile (nearest rank) of sorted durations, or 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}
