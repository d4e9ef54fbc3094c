package server

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/gen"
	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// remoteRules are what both remotes' serializers add to their schemas.
func remoteRules() map[string]rule {
	return map[string]rule{
		"name":      {unique: true, ident: true},
		"url":       {url: true},
		"proxy_url": {url: true},
		// Pulp's document has headers not nullable; a null has always been accepted here.
		"headers": {nullable: true},
	}
}

var remoteReadOnly = []string{"hidden_fields"}

var containerRemoteSerializer = &serializer{
	schema: "container.ContainerRemote",
	kind:   models.KindContainerRemote,
	model:  &models.Remote{},
	rules: withRules(remoteRules(), map[string]rule{
		"upstream_name": {ident: true},
		// The deprecated tag filters are added to includes and excludes (mergeTagFilters).
		"include_tags": {consumed: true},
		"exclude_tags": {consumed: true},
		// Stored, never used (no signature sync); null is accepted, as always here.
		"sigstore": {plain: true, nullable: true},
	}),
	readOnly: remoteReadOnly,
	check: func(s *Server, in *input, errs *models.ValidationError) {
		mergeTagFilters(in)
		if v, _ := in.merged["sigstore"].(string); in.present["sigstore"] && v != "" && httpURLError(v) != "" {
			// Django's URLValidator(schemes=["http", "https"]) has one message.
			errs.Add("sigstore", "Enter a valid URL.")
		}
		// pulp_container 2.29's validate() does not call pulpcore's, so the proxy
		// credentials of a container remote are not checked.
		checkRemoteFields(s, in, errs)
	},
}

var pullThroughRemoteSerializer = &serializer{
	schema:   "container.ContainerPullThroughRemote",
	kind:     models.KindPullThroughRemote,
	model:    &models.Remote{},
	rules:    remoteRules(),
	readOnly: remoteReadOnly,
	check: func(s *Server, in *input, errs *models.ValidationError) {
		checkRemoteFields(s, in, errs)
		checkProxyCredentials(in, errs)
	},
}

// mergeTagFilters applies the container remote's deprecated write-only include_tags and
// exclude_tags as pulp_container 2.29's validate() does: a non-empty list is appended to the
// includes (excludes) of the same request, or replaces them when the request has none.
func mergeTagFilters(in *input) {
	for api, model := range map[string]string{"include_tags": "includes", "exclude_tags": "excludes"} {
		tags, _ := in.merged[api].([]string)
		delete(in.merged, api)
		delete(in.values, api)
		if len(tags) == 0 {
			continue
		}
		var list []string
		if in.present[model] {
			base, _ := in.merged[model].([]string)
			list = append(list, base...)
		}
		list = append(list, tags...)
		in.merged[model] = list
		b, _ := json.Marshal(list)
		in.values[model] = b
	}
}

// checkRemoteFields adds pulpcore's RemoteNetworkConfigSerializer field checks (certificates,
// proxy_url), refuses a negative max_retries (Pulp's column is unsigned: it answers 500), and
// fills tls_validation on create, which Pulp's model defaults to true.
func checkRemoteFields(_ *Server, in *input, errs *models.ValidationError) {
	if n, ok := in.merged["max_retries"].(int64); ok && in.present["max_retries"] && n < 0 {
		errs.Add("max_retries", "Ensure this value is greater than or equal to 0.")
	}
	for _, name := range []string{"ca_cert", "client_cert"} {
		v, _ := in.merged[name].(string)
		if !in.present[name] || v == "" || len(errs.Fields[name]) > 0 {
			continue
		}
		certs, msg := validCertificates(name, v)
		if msg != "" {
			errs.Add(name, msg)
			continue
		}
		in.merged[name] = certs
		in.values[name], _ = json.Marshal(certs)
	}
	proxy, _ := in.merged["proxy_url"].(string)
	if in.present["proxy_url"] && strings.Contains(proxy, "@") && len(errs.Fields["proxy_url"]) == 0 {
		errs.Add("proxy_url", "proxy_url must not contain credentials")
	}
	if in.id != "" {
		return
	}
	if _, ok := in.values["tls_validation"]; !ok {
		in.values["tls_validation"] = []byte("true")
	}
}

// checkProxyCredentials is pulpcore's RemoteNetworkConfigSerializer.validate(): proxy
// credentials need a proxy, and come as a pair (the request's values over the object's).
func checkProxyCredentials(in *input, errs *models.ValidationError) {
	if len(errs.Fields) > 0 {
		return
	}
	proxy, _ := in.merged["proxy_url"].(string)
	user, _ := in.merged["proxy_username"].(string)
	pass, _ := in.merged["proxy_password"].(string)
	switch {
	case (user != "" || pass != "") && proxy == "":
		errs.Add("non_field_errors", "proxy credentials cannot be specified without a proxy")
	case (user != "") != (pass != ""):
		errs.Add("non_field_errors", "proxy username and password can only be specified together")
	}
}

// validCertificates keeps only the certificates of a PEM value, as pulpcore's
// _validate_certificate: each BEGIN..END CERTIFICATE block, checked, joined by newlines. A
// value with none is "No <which> specified in string <value>"; a block that is no certificate
// is "Invalid <which> specified, error '<reason>'" (the reason is Go's, not Python's).
func validCertificates(which, value string) (string, string) {
	var certs []string
	block := ""
	for _, line := range strings.Split(value, "\n") {
		if strings.Contains(line, "-----BEGIN CERTIFICATE-----") || block != "" {
			block += line + "\n"
		}
		if strings.Contains(line, "-----END CERTIFICATE-----") {
			p, _ := pem.Decode([]byte(block[strings.Index(block, "-----BEGIN"):]))
			if p == nil {
				return "", fmt.Sprintf("Invalid %s specified, error '%s'", which, "('Unable to load PEM file.',)")
			}
			if _, err := x509.ParseCertificate(p.Bytes); err != nil {
				return "", fmt.Sprintf("Invalid %s specified, error '('%s',)'", which, err.Error())
			}
			certs = append(certs, strings.TrimSpace(block))
			block = ""
		}
	}
	if len(certs) == 0 {
		return "", fmt.Sprintf("No %s specified in string %s", which, value)
	}
	return strings.Join(certs, "\n") + "\n", ""
}

// withRules returns base with more added.
func withRules(base, more map[string]rule) map[string]rule {
	for k, v := range more {
		base[k] = v
	}
	return base
}

func remoteListSpec(k models.Kind) *models.ListSpec {
	return &models.ListSpec{
		Model: &models.Remote{},
		Scope: scopeType(k.PulpType),
		Columns: map[string]string{"name": "name", "pulp_created": "pulp_created",
			"pulp_last_updated": "pulp_last_updated", "url": "url", "policy": "policy", "pulp_id": "id"},
		Special: commonSpecial(k, "remotes"),
		Order:   "pulp_created DESC, id DESC",
	}
}

// commonSpecial are the filters every list of one kind offers: pulp_href__in, prn__in,
// pulp_id__in and pulp_label_select.
func commonSpecial(k models.Kind, table string) map[string]models.FilterFunc {
	ids := func(values []string, parse func(string) (string, bool)) ([]string, error) {
		var out []string
		for _, v := range values {
			id, ok := parse(v)
			if !ok {
				return nil, &models.BareListError{Msg: "URI couldn't be resolved: " + v}
			}
			out = append(out, id)
		}
		return out, nil
	}
	byRef := func(v string) (string, bool) {
		r, ok := models.ParseRef(v)
		return r.ID, ok && r.Kind == k
	}
	return map[string]models.FilterFunc{
		"pulp_href__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			list, err := ids(models.SplitList(v), byRef)
			return q.Where(table+".id IN ?", append(list, "")), err
		},
		"prn__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			list, err := ids(models.SplitList(v), byRef)
			return q.Where(table+".id IN ?", append(list, "")), err
		},
		"pulp_id__in": func(q *gorm.DB, v string) (*gorm.DB, error) {
			return q.Where(table+".id IN ?", append(models.SplitList(v), "")), nil
		},
		"pulp_label_select": func(q *gorm.DB, v string) (*gorm.DB, error) {
			return models.LabelSelect(q, table+".pulp_labels", v)
		},
	}
}

// RemotesContainerContainerList lists container remotes.
func (s *Server) RemotesContainerContainerList(c *gin.Context, _ gen.RemotesContainerContainerListParams) {
	s.respond(c, list[models.Remote](s, c, remoteListSpec(models.KindContainerRemote)))
}

// RemotesContainerContainerCreate creates a container remote (201).
func (s *Server) RemotesContainerContainerCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, containerRemoteSerializer))
}

// RemotesContainerContainerRead shows a container remote.
func (s *Server) RemotesContainerContainerRead(c *gin.Context, id string, _ gen.RemotesContainerContainerReadParams) {
	s.respond(c, s.readObject(c, models.KindContainerRemote, id))
}

// RemotesContainerContainerUpdate replaces a container remote.
func (s *Server) RemotesContainerContainerUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerRemoteSerializer, id, modePut))
}

// RemotesContainerContainerPartialUpdate patches a container remote.
func (s *Server) RemotesContainerContainerPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, containerRemoteSerializer, id, modePatch))
}

// RemotesContainerContainerDelete deletes a container remote (task).
func (s *Server) RemotesContainerContainerDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindContainerRemote, id, tasks.NameGeneralDelete))
}

// RemotesContainerContainerSetLabel sets a label on a container remote.
func (s *Server) RemotesContainerContainerSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindContainerRemote, id))
}

// RemotesContainerContainerUnsetLabel removes a label from a container remote.
func (s *Server) RemotesContainerContainerUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindContainerRemote, id))
}

// RemotesContainerPullThroughList lists pull-through remotes.
func (s *Server) RemotesContainerPullThroughList(c *gin.Context, _ gen.RemotesContainerPullThroughListParams) {
	s.respond(c, list[models.Remote](s, c, remoteListSpec(models.KindPullThroughRemote)))
}

// RemotesContainerPullThroughCreate creates a pull-through remote (201).
func (s *Server) RemotesContainerPullThroughCreate(c *gin.Context) {
	s.respond(c, s.createNow(c, pullThroughRemoteSerializer))
}

// RemotesContainerPullThroughRead shows a pull-through remote.
func (s *Server) RemotesContainerPullThroughRead(c *gin.Context, id string, _ gen.RemotesContainerPullThroughReadParams) {
	s.respond(c, s.readObject(c, models.KindPullThroughRemote, id))
}

// RemotesContainerPullThroughUpdate replaces a pull-through remote.
func (s *Server) RemotesContainerPullThroughUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pullThroughRemoteSerializer, id, modePut))
}

// RemotesContainerPullThroughPartialUpdate patches a pull-through remote.
func (s *Server) RemotesContainerPullThroughPartialUpdate(c *gin.Context, id string) {
	s.respond(c, s.updateObject(c, pullThroughRemoteSerializer, id, modePatch))
}

// RemotesContainerPullThroughDelete deletes a pull-through remote (task).
func (s *Server) RemotesContainerPullThroughDelete(c *gin.Context, id string) {
	s.respond(c, s.deleteObject(c, models.KindPullThroughRemote, id, tasks.NameGeneralDelete))
}

// RemotesContainerPullThroughSetLabel sets a label on a pull-through remote.
func (s *Server) RemotesContainerPullThroughSetLabel(c *gin.Context, id string) {
	s.respond(c, s.setLabel(c, models.KindPullThroughRemote, id))
}

// RemotesContainerPullThroughUnsetLabel removes a label from a pull-through remote.
func (s *Server) RemotesContainerPullThroughUnsetLabel(c *gin.Context, id string) {
	s.respond(c, s.unsetLabel(c, models.KindPullThroughRemote, id))
}

// RemotesList lists remotes of every kind.
func (s *Server) RemotesList(c *gin.Context, _ gen.RemotesListParams) {
	spec := remoteListSpec(models.KindContainerRemote)
	spec.Scope = nil
	spec.Columns["pulp_type"] = "pulp_type"
	s.respond(c, listView[models.Remote](s, c, spec, genericRemote))
}
