package models

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// DefaultLoginTTL is how long Logins trusts what it verified: a password change, a
// deactivation or a deletion takes effect within it on every process.
const DefaultLoginTTL = 10 * time.Second

// maxLogins bounds the entries Logins remembers; when full it forgets everything expired,
// then everything.
const maxLogins = 4096

// Principal is who a request authenticated as.
type Principal struct {
	ID        int64
	Username  string
	Superuser bool
}

// Href is the pulp_href of p's user.
func (p Principal) Href() string { return UserHref(p.ID) }

// Login failures.
var (
	// ErrBadCredentials: no active user has that name and password.
	ErrBadCredentials = errors.New("invalid username/password")
	// ErrNoSuchUser: no active user has that name.
	ErrNoSuchUser = errors.New("no such user")
)

// Logins checks credentials and usernames against the users table, and the admin's name
// against the configured admin password (constant time; an empty password logs nobody in).
// It remembers each verified password, keyed by a SHA-256 of name and password so that no
// password is kept, and each looked-up name, for ttl: the API and the registry are hot and a
// bcrypt check costs tens of milliseconds.
type Logins struct {
	db            *gorm.DB
	adminPassword string
	ttl           time.Duration
	now           func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]loginEntry
}

type loginEntry struct {
	p       Principal
	expires time.Time
}

// NewLogins returns the login checks over db; ttl 0 means DefaultLoginTTL and a negative ttl
// remembers nothing.
func NewLogins(db *gorm.DB, adminPassword string, ttl time.Duration) *Logins {
	if ttl == 0 {
		ttl = DefaultLoginTTL
	}
	return &Logins{db: db, adminPassword: adminPassword, ttl: ttl, now: time.Now, entries: map[[32]byte]loginEntry{}}
}

// Authenticate returns the active user with username and password, or ErrBadCredentials.
func (l *Logins) Authenticate(ctx context.Context, username, password string) (Principal, error) {
	key := l.key("p", username, password)
	if p, ok := l.get(key); ok {
		return p, nil
	}
	if username == AdminUsername {
		// The admin is built in: its password is the configured one, never a stored hash.
		if l.adminPassword == "" || !equalSecret(password, l.adminPassword) {
			return Principal{}, ErrBadCredentials
		}
		return adminPrincipal, nil
	}
	u, err := l.active(ctx, username)
	if errors.Is(err, ErrNoSuchUser) {
		// Spend what a password check costs, so that timing does not tell names apart.
		CheckPassword(dummyHash(), password)
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	if !CheckPassword(u.Password, password) {
		return Principal{}, ErrBadCredentials
	}
	p := principal(u)
	l.put(key, p)
	return p, nil
}

// adminPrincipal is the admin: the first user, a superuser.
var adminPrincipal = Principal{ID: 1, Username: AdminUsername, Superuser: true}

// dummyHash is a hash that no password matches, checked for unknown names.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("pulpgo: no such user")
	return h
})

// Lookup returns the active user named username (a token's subject), or ErrNoSuchUser.
func (l *Logins) Lookup(ctx context.Context, username string) (Principal, error) {
	if username == AdminUsername {
		return adminPrincipal, nil
	}
	key := l.key("u", username, "")
	if p, ok := l.get(key); ok {
		return p, nil
	}
	u, err := l.active(ctx, username)
	if err != nil {
		return Principal{}, err
	}
	p := principal(u)
	l.put(key, p)
	return p, nil
}

// Forget drops everything remembered, so that a change made by this process counts at once
// here (other processes see it within the TTL).
func (l *Logins) Forget() {
	l.mu.Lock()
	clear(l.entries)
	l.mu.Unlock()
}

func (l *Logins) active(ctx context.Context, username string) (*User, error) {
	var u User
	err := l.db.WithContext(ctx).Take(&u, "username = ?", username).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && !u.IsActive {
		return nil, ErrNoSuchUser
	}
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", username, err)
	}
	return &u, nil
}

func principal(u *User) Principal {
	return Principal{ID: u.ID, Username: u.Username, Superuser: u.IsSuperuser}
}

// key hashes the kind of entry, the name and the password, each length-prefixed.
func (l *Logins) key(kind, username, password string) [32]byte {
	h := sha256.New()
	for _, s := range []string{kind, username, password} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (l *Logins) get(k [32]byte) (Principal, bool) {
	if l.ttl < 0 {
		return Principal{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[k]
	if !ok || !l.now().Before(e.expires) {
		return Principal{}, false
	}
	return e.p, true
}

func (l *Logins) put(k [32]byte, p Principal) {
	if l.ttl < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.entries) >= maxLogins {
		for key, e := range l.entries {
			if !now.Before(e.expires) {
				delete(l.entries, key)
			}
		}
		if len(l.entries) >= maxLogins {
			clear(l.entries)
		}
	}
	l.entries[k] = loginEntry{p: p, expires: now.Add(l.ttl)}
}

// equalSecret compares a and b in time independent of their contents and lengths.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
