package htpasswd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DefaultCheckEvery is how often, at most, the file is looked at for changes.
const DefaultCheckEvery = time.Second

// maxVerified bounds the logins remembered as verified; when full they are all forgotten.
const maxVerified = 4096

// maxFileBytes bounds the file read: a user list, not a data set.
const maxFileBytes = 16 << 20

// Options configure a File.
type Options struct {
	// Logger receives the warnings about skipped entries and failed reloads; nil means
	// slog.Default().
	Logger *slog.Logger
	// CheckEvery is how often, at most, the file is looked at for changes: zero means
	// DefaultCheckEvery, negative means at every use.
	CheckEvery time.Duration
}

// File is the users of one htpasswd file, safe for concurrent use.
type File struct {
	path  string
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	users map[string]string // name -> bcrypt hash
	// dummy is a hash no password matches, of the highest cost among users, checked for
	// unknown names so that they cost what a known name's check costs.
	dummy   []byte
	info    os.FileInfo // of the last load attempt, good or bad
	checked time.Time
	// verified remembers logins whose bcrypt check passed, keyed by a SHA-256 of name and
	// password (no password is kept), with the hash they matched: an entry counts only while
	// the user still has that hash. A bcrypt check costs tens of milliseconds and a pull with
	// Basic credentials sends them with every request.
	verified map[[32]byte]string
}

// Open reads the htpasswd file at path. A file that is missing, unreadable or malformed is an
// error; entries that are not bcrypt are skipped with a warning each.
func Open(path string, opts Options) (*File, error) {
	f := &File{path: path, log: opts.Logger, every: opts.CheckEvery, now: time.Now, verified: map[[32]byte]string{}}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.every == 0 {
		f.every = DefaultCheckEvery
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file: %w", err)
	}
	users, err := f.load()
	if err != nil {
		return nil, err
	}
	f.setUsers(users)
	f.info, f.checked = info, f.now()
	return f, nil
}

// Authenticate reports whether the file has user with password. An unknown user costs what a
// password check costs, so that timing does not tell names apart.
func (f *File) Authenticate(user, password string) bool {
	hash, ok := f.hash(user)
	key := verifiedKey(user, password)
	if ok {
		f.mu.Lock()
		h, hit := f.verified[key]
		f.mu.Unlock()
		if hit && h == hash {
			return true
		}
	}
	if !ok {
		f.mu.Lock()
		dummy := f.dummy
		f.mu.Unlock()
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	f.mu.Lock()
	if len(f.verified) >= maxVerified {
		clear(f.verified)
	}
	f.verified[key] = hash
	f.mu.Unlock()
	return true
}

// Has reports whether the file has an entry for user (the subject of a token issued to it).
func (f *File) Has(user string) bool {
	_, ok := f.hash(user)
	return ok
}

// hash returns user's bcrypt hash, after reloading the file if it changed.
func (f *File) hash(user string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh()
	h, ok := f.users[user]
	return h, ok
}

// refresh reloads the file when it changed since it was last looked at; f.mu must be held.
func (f *File) refresh() {
	now := f.now()
	if f.every > 0 && now.Sub(f.checked) < f.every {
		return
	}
	f.checked = now
	info, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		// Removing the file removes its users (fail closed): an operator who deletes it
		// to lock everyone out must not find them still logging in.
		if f.info != nil || len(f.users) > 0 {
			f.log.Warn("htpasswd file removed: no pull-only users until it is back", "file", f.path)
		}
		f.info = nil
		f.setUsers(map[string]string{})
		return
	}
	if err != nil {
		if f.info != nil {
			f.log.Warn("htpasswd file unreadable, keeping its previous users", "file", f.path, "err", err)
		}
		f.info = nil
		return
	}
	if f.info != nil && os.SameFile(f.info, info) && info.Size() == f.info.Size() && info.ModTime().Equal(f.info.ModTime()) {
		return
	}
	f.info = info
	users, err := f.load()
	if err != nil {
		f.log.Warn("htpasswd file not reloaded, keeping its previous users", "file", f.path, "err", err)
		return
	}
	f.setUsers(users)
	f.log.Info("htpasswd file reloaded", "file", f.path, "users", len(users))
}

// load reads and parses the file.
func (f *File) load() (map[string]string, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", f.path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("htpasswd file %s: larger than %d bytes", f.path, maxFileBytes)
	}
	return parse(f.path, data, f.log)
}

// ErrMalformed is the error of a line that is no "user:hash" entry, comment or blank line.
var ErrMalformed = errors.New("malformed htpasswd entry")

// parse reads htpasswd entries "user:hash", one a line; blank lines and lines starting with
// "#" are ignored. Entries whose hash is not bcrypt ($2a$, $2b$, $2y$) are skipped with a
// warning naming the user and the line (never the hash). A line without a user or a ":" makes
// the whole file malformed. The last entry of a user wins.
func parse(path string, data []byte, log *slog.Logger) (map[string]string, error) {
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("%w: %s line %d", ErrMalformed, path, line)
		}
		if !isBcrypt(hash) {
			log.Warn("htpasswd entry skipped: not a bcrypt hash (create entries with htpasswd -B)", "file", path, "line", line, "user", user)
			continue
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", path, err)
	}
	return users, nil
}

// isBcrypt reports whether hash is a well-formed bcrypt hash of a version Distribution
// accepts.
func isBcrypt(hash string) bool {
	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
		return false
	}
	_, err := bcrypt.Cost([]byte(hash))
	return err == nil
}

// setUsers installs users and a dummy hash of their highest cost; f.mu must be held, or f not
// yet shared.
func (f *File) setUsers(users map[string]string) {
	cost := bcrypt.DefaultCost
	if len(users) > 0 {
		cost = bcrypt.MinCost
		for _, h := range users {
			if c, err := bcrypt.Cost([]byte(h)); err == nil && c > cost {
				cost = c
			}
		}
	}
	if c, err := bcrypt.Cost(f.dummy); err != nil || c != cost {
		f.dummy, _ = bcrypt.GenerateFromPassword([]byte("pulpgo: no such htpasswd user"), cost)
	}
	f.users = users
}

// verifiedKey hashes name and password, each length-prefixed.
func verifiedKey(user, password string) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:%s", len(user), user, len(password), password)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}
