package models

import (
	"time"

	"gorm.io/gorm"
)

// Remote is a container remote or a pull-through remote (PulpType tells which): where and how
// to reach an upstream registry. Names are unique across both kinds, as in Pulp. The fields
// Pulp encrypts (client_key, proxy_username, proxy_password, username, password) are sealed
// at rest under the database encryption key (see secrets.go).
type Remote struct {
	ID              string    `gorm:"primaryKey;size:36" json:"-"`
	PulpType        string    `gorm:"size:64;index;not null" json:"-"`
	PulpCreated     time.Time `json:"-"`
	PulpLastUpdated time.Time `json:"-"`

	Name                string     `gorm:"uniqueIndex;not null" json:"name"`
	URL                 string     `gorm:"not null" json:"url"`
	PulpLabels          Labels     `gorm:"type:text" json:"pulp_labels"`
	Policy              string     `json:"policy"`
	UpstreamName        string     `json:"upstream_name"`
	CACert              *string    `json:"ca_cert"`
	ClientCert          *string    `json:"client_cert"`
	ClientKey           *string    `gorm:"serializer:encrypted" json:"client_key"`
	TLSValidation       bool       `json:"tls_validation"`
	ProxyURL            *string    `json:"proxy_url"`
	ProxyUsername       *string    `gorm:"serializer:encrypted" json:"proxy_username"`
	ProxyPassword       *string    `gorm:"serializer:encrypted" json:"proxy_password"`
	Username            *string    `gorm:"serializer:encrypted" json:"username"`
	Password            *string    `gorm:"serializer:encrypted" json:"password"`
	MaxRetries          *int64     `json:"max_retries"`
	TotalTimeout        *float64   `json:"total_timeout"`
	ConnectTimeout      *float64   `json:"connect_timeout"`
	SockConnectTimeout  *float64   `json:"sock_connect_timeout"`
	SockReadTimeout     *float64   `json:"sock_read_timeout"`
	Headers             JSON       `gorm:"type:text" json:"headers"`
	DownloadConcurrency *int64     `json:"download_concurrency"`
	RateLimit           *int64     `json:"rate_limit"`
	Includes            StringList `gorm:"type:text" json:"includes"`
	Excludes            StringList `gorm:"type:text" json:"excludes"`
	Sigstore            *string    `json:"sigstore"`
}

// Kind returns the API kind of r.
func (r *Remote) Kind() Kind {
	if r.PulpType == KindPullThroughRemote.PulpType {
		return KindPullThroughRemote
	}
	return KindContainerRemote
}

// Href is r's pulp_href.
func (r *Remote) Href() string { return r.Kind().Href(r.ID) }

func hidden(name string, v *string) map[string]any {
	return map[string]any{"name": name, "is_set": v != nil && *v != ""}
}

// Serialize renders r as Pulp's response object. Secrets never appear: hidden_fields says
// which of them are set.
func (r *Remote) Serialize(_ *gorm.DB, _ string) (map[string]any, error) {
	k := r.Kind()
	hiddenFields := []any{
		hidden("client_key", r.ClientKey), hidden("proxy_username", r.ProxyUsername),
		hidden("proxy_password", r.ProxyPassword), hidden("username", r.Username),
		hidden("password", r.Password),
	}
	m := map[string]any{
		"pulp_href":            r.Href(),
		"prn":                  k.PRNOf(r.ID),
		"pulp_created":         FormatTime(r.PulpCreated),
		"pulp_last_updated":    FormatTime(r.PulpLastUpdated),
		"name":                 r.Name,
		"url":                  r.URL,
		"pulp_labels":          labelsAny(r.PulpLabels),
		"policy":               r.Policy,
		"ca_cert":              strPtrAny(r.CACert),
		"client_cert":          strPtrAny(r.ClientCert),
		"tls_validation":       r.TLSValidation,
		"proxy_url":            strPtrAny(r.ProxyURL),
		"max_retries":          ptrAny(r.MaxRetries),
		"total_timeout":        ptrAny(r.TotalTimeout),
		"connect_timeout":      ptrAny(r.ConnectTimeout),
		"sock_connect_timeout": ptrAny(r.SockConnectTimeout),
		"sock_read_timeout":    ptrAny(r.SockReadTimeout),
		"headers":              r.Headers.Any(),
		"download_concurrency": ptrAny(r.DownloadConcurrency),
		"rate_limit":           ptrAny(r.RateLimit),
		"includes":             listAny(r.Includes),
		"excludes":             listAny(r.Excludes),
	}
	if k == KindContainerRemote {
		hiddenFields = append(hiddenFields,
			map[string]any{"name": "include_tags", "is_set": false},
			map[string]any{"name": "exclude_tags", "is_set": false})
		m["upstream_name"] = r.UpstreamName
		m["sigstore"] = strPtrAny(r.Sigstore)
	}
	m["hidden_fields"] = hiddenFields
	return m, nil
}

func ptrAny[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func labelsAny(l Labels) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}
