package models

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// Secrets at rest. The remote fields Pulp keeps in EncryptedTextFields (username, password,
// proxy_username, proxy_password, client_key) and the arguments of every task (Pulp's
// enc_args and enc_kwargs) are stored sealed with AES-256-GCM under the database encryption
// key, Pulp's DB_ENCRYPTION_KEY. A sealed value is text:
//
//	enc:v1:<key id>:<base64 of a 12-byte random nonce, then the ciphertext and its 16-byte tag>
//
// "v1" names this format, so that another one can follow; the key id (8 hex digits derived
// from the key) names the key that sealed it, so that a value sealed under another key is
// reported as such instead of as a corrupt value. A stored value without the prefix is
// plaintext written before encryption existed: it still reads, and Migrate seals it.
//
// Fields opt in with the gorm tag serializer:encrypted; the Go type stays *string or JSON,
// so readers see plaintext and need no change. gorm applies serializers to structs only:
// a secret column must never be written through Updates with a map.
const sealedPrefix = "enc:v1:"

// KeySize is the length of a database encryption key in bytes (AES-256).
const KeySize = 32

// KeyFileName is the name of the key file serve creates in its data directory when no key
// file is given.
const KeyFileName = "db_symmetric_key"

// Key is a database encryption key, ready to seal and open values.
type Key struct {
	id   string
	aead cipher.AEAD
	mac  []byte // the HMAC key of MAC, derived from the key
}

// NewKey returns the key made of raw, which must be KeySize bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("database encryption key: %d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("pulpgo database encryption key id\x00"), raw...))
	mac := sha256.Sum256(append([]byte("pulpgo database mac key\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:4]), aead: aead, mac: mac[:]}, nil
}

// MAC is an HMAC-SHA256 of data under a key derived from k: a name for data that holds
// secrets which can be stored without letting anyone without k guess them.
func (k *Key) MAC(data []byte) []byte {
	h := hmac.New(sha256.New, k.mac)
	h.Write(data)
	return h.Sum(nil)
}

// ParseKey reads a key file's contents: KeySize bytes in base64, standard or URL-safe
// alphabet, padded or not, surrounded by white space (the format of Pulp's key file, made
// by `openssl rand -base64 32`).
func ParseKey(text []byte) (*Key, error) {
	s := string(bytes.TrimSpace(text))
	if s == "" {
		return nil, errors.New("database encryption key: empty")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return nil, errors.New("database encryption key: more than one line; want one base64 key of 32 bytes")
	}
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("database encryption key: not base64: %w", err)
	}
	return NewKey(raw)
}

// LoadKeyFile reads the key file at path.
func LoadKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read database encryption key file: %w", err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// EnsureKeyFile loads the key file at path, or creates it first (mode 0600, KeySize random
// bytes in URL-safe base64, a valid Fernet key as Pulp's) when there is none; created
// reports which. The file appears whole or not at all (written aside, synced, then linked
// into place), so a process starting at the same time never reads half a key, and two
// never make two keys.
func EnsureKeyFile(path string) (k *Key, created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		k, err := LoadKeyFile(path)
		return k, false, err
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, false, fmt.Errorf("create database encryption key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(base64.URLEncoding.EncodeToString(raw) + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	if errors.Is(err, os.ErrExist) {
		k, err := LoadKeyFile(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("write database encryption key file %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	k, err = NewKey(raw)
	return k, true, err
}

// ID names k in the values it seals: 8 hex digits of a hash of the key, which tell keys
// apart without revealing them.
func (k *Key) ID() string { return k.id }

// Seal encrypts plain with a fresh random nonce and returns the sealed text.
func (k *Key) Seal(plain []byte) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("models: no randomness for a nonce: " + err.Error())
	}
	out := k.aead.Seal(nonce, nonce, plain, nil)
	return sealedPrefix + k.id + ":" + base64.RawStdEncoding.EncodeToString(out)
}

// ErrWrongKey is returned when a value was sealed under another key than the one given.
var ErrWrongKey = errors.New("sealed under another database encryption key")

// Open decrypts a value Seal made.
func (k *Key) Open(sealed string) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, errors.New("not a sealed value")
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errors.New("malformed sealed value: no key id")
	}
	if id != k.id {
		return nil, fmt.Errorf("%w: the value names key %s, the key given is %s", ErrWrongKey, id, k.id)
	}
	b, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, errors.New("malformed sealed value")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return nil, errors.New("sealed value fails authentication: corrupted, or sealed under another key")
	}
	return plain, nil
}

// IsSealed reports whether a stored value is sealed (not legacy plaintext).
func IsSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

var activeKey atomic.Pointer[Key]

// SetEncryptionKey makes k the key that seals and opens secrets in this process: the
// --db-encryption-key of the running role. Set it once, before the first database access.
func SetEncryptionKey(k *Key) { activeKey.Store(k) }

// EncryptionKey returns the key set by SetEncryptionKey, or nil.
func EncryptionKey() *Key { return activeKey.Load() }

// errNoKey is what reading or writing a secret without a key returns.
var errNoKey = errors.New("no database encryption key is set (--db-encryption-key)")

func init() { schema.RegisterSerializer("encrypted", encryptedSerializer{}) }

// encryptedSerializer is the gorm serializer "encrypted": it seals a *string, string or
// Valuer (JSON) field on write and opens it on read.
type encryptedSerializer struct{}

func columnName(f *schema.Field) string {
	if f.Schema != nil {
		return f.Schema.Table + "." + f.DBName
	}
	return f.DBName
}

// Value implements schema.SerializerValuerInterface.
func (encryptedSerializer) Value(_ context.Context, f *schema.Field, _ reflect.Value, v any) (any, error) {
	var plain string
	switch x := v.(type) {
	case nil:
		return nil, nil
	case *string:
		if x == nil {
			return nil, nil
		}
		plain = *x
	case string:
		plain = x
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil || dv == nil {
			return nil, err
		}
		switch d := dv.(type) {
		case string:
			plain = d
		case []byte:
			plain = string(d)
		default:
			return nil, fmt.Errorf("encrypt %s: unsupported value %T", columnName(f), dv)
		}
	default:
		return nil, fmt.Errorf("encrypt %s: unsupported field type %T", columnName(f), v)
	}
	k := EncryptionKey()
	if k == nil {
		return nil, fmt.Errorf("store %s: %w", columnName(f), errNoKey)
	}
	return k.Seal([]byte(plain)), nil
}

// Scan implements schema.SerializerInterface.
func (encryptedSerializer) Scan(ctx context.Context, f *schema.Field, dst reflect.Value, dbValue any) error {
	fv := reflect.New(f.FieldType) // *FieldType, zero: a NULL column
	if dbValue != nil {
		var stored string
		switch d := dbValue.(type) {
		case string:
			stored = d
		case []byte:
			stored = string(d)
		default:
			return fmt.Errorf("decrypt %s: unsupported column value %T", columnName(f), dbValue)
		}
		plain := stored
		if IsSealed(stored) {
			k := EncryptionKey()
			if k == nil {
				return fmt.Errorf("read %s: %w", columnName(f), errNoKey)
			}
			b, err := k.Open(stored)
			if err != nil {
				return fmt.Errorf("decrypt %s: %w", columnName(f), err)
			}
			plain = string(b)
		}
		if err := setPlain(fv, plain); err != nil {
			return fmt.Errorf("decrypt %s: %w", columnName(f), err)
		}
	}
	f.ReflectValueOf(ctx, dst).Set(fv.Elem())
	return nil
}

// setPlain stores plain into *p, whose type is *string, *(*string), a sql.Scanner or a string
// kind.
func setPlain(p reflect.Value, plain string) error {
	if s, ok := p.Interface().(sql.Scanner); ok {
		return s.Scan(plain)
	}
	e := p.Elem()
	switch {
	case e.Kind() == reflect.String:
		e.SetString(plain)
	case e.Kind() == reflect.Pointer && e.Type().Elem().Kind() == reflect.String:
		v := reflect.New(e.Type().Elem())
		v.Elem().SetString(plain)
		e.Set(v)
	default:
		return fmt.Errorf("unsupported field type %s", e.Type())
	}
	return nil
}

// EncryptionKeyCheck is the single row (ID 1) that tells whether a process holds the key
// that sealed this database's secrets. The
// first start with a key writes it; later starts open it, so a role given another key
// refuses to start instead of failing on the first secret it reads or writing secrets no
// other role can read. Sealed is a known text sealed under that key.
type EncryptionKeyCheck struct {
	ID          int    `gorm:"primaryKey;autoIncrement:false"`
	KeyID       string `gorm:"size:16;not null"`
	Sealed      string `gorm:"type:text;not null"`
	PulpCreated time.Time
}

const keyCheckText = "pulpgo database encryption key check"

// secretColumns are the columns of Remote the serializer seals.
var secretColumns = []string{"username", "password", "proxy_username", "proxy_password", "client_key"}

// checkKey verifies that the process's key is the database's (recording it on the first
// start), then seals the secrets stored in plaintext before encryption existed.
func checkKey(tx *gorm.DB) error {
	tx = tx.Session(&gorm.Session{NewDB: true})
	k := EncryptionKey()
	if k == nil {
		return errNoKey
	}
	var kc EncryptionKeyCheck
	err := tx.Take(&kc, "id = ?", 1).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		kc = EncryptionKeyCheck{ID: 1, KeyID: k.ID(), Sealed: k.Seal([]byte(keyCheckText)), PulpCreated: Now()}
		if err := tx.Create(&kc).Error; err != nil {
			return fmt.Errorf("record the database encryption key: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read the database encryption key check: %w", err)
	default:
		if b, err := k.Open(kc.Sealed); err != nil || string(b) != keyCheckText {
			return fmt.Errorf("the database encryption key given (key %s) is not the one this database's secrets are sealed with (key %s): every role must be given the same --db-encryption-key file", k.ID(), kc.KeyID)
		}
	}
	return sealPlaintext(tx)
}

// sealPlaintext seals the remote secrets and task arguments still stored in plaintext:
// those written before encryption existed. Rows already sealed are left alone, so it is
// cheap to run at every start.
func sealPlaintext(tx *gorm.DB) error {
	like := sealedPrefix + "%"
	var conds []string
	var args []any
	for _, c := range secretColumns {
		conds = append(conds, "("+c+" IS NOT NULL AND "+c+" NOT LIKE ?)")
		args = append(args, like)
	}
	var remotes []Remote
	if err := tx.Where(strings.Join(conds, " OR "), args...).Find(&remotes).Error; err != nil {
		return fmt.Errorf("find remotes with plaintext secrets: %w", err)
	}
	for i := range remotes {
		r := &remotes[i]
		if err := tx.Model(r).Select(secretColumns).Updates(r).Error; err != nil {
			return fmt.Errorf("seal the secrets of remote %s: %w", r.Name, err)
		}
	}
	var batch []Task
	res := tx.Select("id", "args").Where("args IS NOT NULL AND args NOT LIKE ?", like).
		FindInBatches(&batch, 500, func(btx *gorm.DB, _ int) error {
			for i := range batch {
				t := &batch[i]
				if err := tx.Model(&Task{ID: t.ID}).Select("args").Updates(&Task{Args: t.Args}).Error; err != nil {
					return fmt.Errorf("seal the arguments of task %s: %w", t.ID, err)
				}
			}
			return nil
		})
	return res.Error
}
