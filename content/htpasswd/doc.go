// Package htpasswd reads Apache htpasswd files of bcrypt entries, as CNCF Distribution's
// htpasswd authentication does, and keeps them current: the file is looked at again at most
// once per CheckEvery when a login is checked, and reloaded when its size, modification time
// or inode changed. A reload that fails (the file unreadable or malformed) keeps the users of
// the last good load.
package htpasswd
