package auth

// Credentials returns the stored credentials of user name, and whether the
// user exists: the broker keeps them when an administrator changes a
// user's tags without giving a new password. They are hashes and SCRAM
// keys, never a password; the caller must not show them to clients.
func (d *Directory) Credentials(name string) (Credentials, bool) {
	u := d.users[name]
	if u == nil {
		return Credentials{}, false
	}
	return u.creds, true
}
