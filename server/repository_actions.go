package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/tasks"
)

// This file holds the content actions of repositories (add/, remove/, tag/, untag/,
// copy_tags/, copy_manifests/ and the push repository's remove_image/). Each validates its body
// as pulp_container's serializer does, refuses the pull-through cache's read-only repositories,
// and dispatches Pulp's task with the repository reserved exclusively (and a copy's source
// repository shared).

// tagNameRe is the grammar of tag names (pulp_container's VALID_TAG_REGEX).
var tagNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// invalidTagMessage is Pulp's message for a tag name outside tagNameRe.
const invalidTagMessage = "The provided tag is not valid. A tag may contain lowercase and uppercase ASCII " +
	"alphabetic characters, digits, underscores, periods, and dashes. A tag must not start with a " +
	"period or a dash."

// trimStrings returns a check that strips surrounding whitespace from the string fields
// names, as DRF's CharField does, and reports those left blank.
func trimStrings(names ...string) func(*Server, *input, *models.ValidationError) {
	return func(_ *Server, in *input, errs *models.ValidationError) {
		for _, n := range names {
			v, ok := in.merged[n].(string)
			if !ok || len(errs.Fields[n]) > 0 {
				continue
			}
			v = strings.TrimSpace(v)
			in.merged[n] = v
			if v == "" {
				errs.Add(n, "This field may not be blank.")
			}
		}
	}
}

// checkTagName checks the (trimmed) tag field against tagNameRe.
func checkTagName(s *Server, in *input, errs *models.ValidationError) {
	trimStrings("tag", "digest")(s, in, errs)
	if v, ok := in.merged["tag"].(string); ok && len(errs.Fields["tag"]) == 0 && !tagNameRe.MatchString(v) {
		errs.Add("tag", invalidTagMessage)
	}
}

var recursiveManageSerializer = &serializer{
	schema: "RecursiveManage",
	check: func(_ *Server, in *input, errs *models.ValidationError) {
		units, _ := in.merged["content_units"].([]string)
		if errs.Err() == nil && len(units) > 1 && contains(units, tasks.RemoveAllUnits) {
			errs.Add("non_field_errors", "'*' should be the only item present in the "+pyList(units))
		}
	},
}

var tagImageSerializer = &serializer{schema: "TagImage", check: checkTagName}

var untagImageSerializer = &serializer{schema: "UnTagImage", check: checkTagName}

var removeImageSerializer = &serializer{schema: "RemoveImage", check: trimStrings("digest")}

// copyRules are the sources of a copy: a container repository (its latest version) or a
// version.
func copyRules() map[string]rule {
	return map[string]rule{
		"source_repository":         {refKinds: []models.Kind{models.KindContainerRepository}},
		"source_repository_version": {refKinds: []models.Kind{models.KindRepositoryVersion}},
	}
}

var tagCopySerializer = &serializer{schema: "TagCopy", rules: copyRules()}

var manifestCopySerializer = &serializer{schema: "ManifestCopy", rules: copyRules()}

// writableRepository loads the repository of kind k an action changes: Pulp's 404s, and the
// read-only refusal for repositories of the pull-through cache.
func (s *Server) writableRepository(c *gin.Context, k models.Kind, id string) (*models.Repository, error) {
	obj, err := s.getObject(c, k, id)
	if err != nil {
		return nil, err
	}
	repo := obj.(*models.Repository)
	if err := repo.WritableCheck(); err != nil {
		return nil, err
	}
	return repo, nil
}

// dispatchOn dispatches task name with args, reserving repo exclusively and shared (copy
// sources) shared.
func (s *Server) dispatchOn(c *gin.Context, repo *models.Repository, name string, args any, shared ...*models.Repository) error {
	nt := models.NewTask{Name: name, Exclusive: []string{repo.Kind().PRNOf(repo.ID)}, Args: args}
	for _, r := range shared {
		nt.Shared = append(nt.Shared, r.Kind().PRNOf(r.ID))
	}
	return s.dispatch(c, nt)
}

// pyStr renders s as Python's repr of a str, which Pulp's messages embed.
func pyStr(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == q:
			b.WriteString(`\` + q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}

// pyList renders items as Python's repr of a list of str.
func pyList(items []string) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = pyStr(it)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// extractPK returns the primary key an href or PRN names, as pulpcore's extract_pk: the last
// part of a PRN, or the last path segment of an href, which must be a UUID.
func extractPK(ref string) (string, error) {
	if strings.HasPrefix(ref, "prn:") {
		parts := strings.Split(ref, ":")
		if len(parts) != 3 {
			return "", &models.BareListError{Msg: "PRN not valid: " + pyList(parts)}
		}
		return strings.ToLower(parts[2]), nil
	}
	path := ref
	if u, err := url.Parse(ref); err == nil {
		path = u.Path
	}
	path = strings.TrimRight(path, "/")
	pk := path[strings.LastIndex(path, "/")+1:]
	id, err := uuid.Parse(pk)
	if err != nil {
		return "", &models.BareListError{Msg: "URI not valid: " + ref}
	}
	return id.String(), nil
}

// contentIDs resolves the content_units of an add or remove to ids, in order and without
// repeats; units that name no content are Pulp's bare-list 400.
func (s *Server) contentIDs(c *gin.Context, units []string) ([]string, error) {
	var ids []string
	hrefOf := map[string]string{}
	for _, u := range units {
		id, err := extractPK(u)
		if err != nil {
			return nil, err
		}
		if _, dup := hrefOf[id]; !dup {
			ids = append(ids, id)
		}
		hrefOf[id] = u
	}
	found, err := models.FindContent(s.db.WithContext(c), ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			missing = append(missing, hrefOf[id])
		}
	}
	if len(missing) > 0 {
		return nil, &models.BareListError{Msg: "Could not find the following content units: " + pyList(missing)}
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// RepositoriesContainerContainerAdd adds content units, recursively, in a new version (task
// recursive_add_content).
func (s *Server) RepositoriesContainerContainerAdd(c *gin.Context, id string) {
	s.respond(c, s.addContent(c, id))
}

func (s *Server) addContent(c *gin.Context, id string) error {
	repo, in, err := s.actionInput(c, models.KindContainerRepository, id, recursiveManageSerializer)
	if err != nil {
		return err
	}
	units, _ := in.merged["content_units"].([]string)
	ids, err := s.contentIDs(c, units)
	if err != nil {
		return err
	}
	return s.dispatchOn(c, repo, tasks.NameRecursiveAdd, tasks.ContentArgs{RepositoryID: repo.ID, ContentUnits: ids})
}

// RepositoriesContainerContainerRemove removes content units, recursively, in a new version
// (task recursive_remove_content); ["*"] removes everything.
func (s *Server) RepositoriesContainerContainerRemove(c *gin.Context, id string) {
	s.respond(c, s.removeContent(c, id))
}

func (s *Server) removeContent(c *gin.Context, id string) error {
	repo, in, err := s.actionInput(c, models.KindContainerRepository, id, recursiveManageSerializer)
	if err != nil {
		return err
	}
	units, _ := in.merged["content_units"].([]string)
	ids := []string{tasks.RemoveAllUnits}
	if !contains(units, tasks.RemoveAllUnits) {
		if ids, err = s.contentIDs(c, units); err != nil {
			return err
		}
	}
	return s.dispatchOn(c, repo, tasks.NameRecursiveRemove, tasks.ContentArgs{RepositoryID: repo.ID, ContentUnits: ids})
}

// tag answers tag/ on a repository of kind k: the manifest must be in the latest version.
func (s *Server) tag(c *gin.Context, k models.Kind, id string) error {
	repo, in, err := s.actionInput(c, k, id, tagImageSerializer)
	if err != nil {
		return err
	}
	name, digest := in.merged["tag"].(string), in.merged["digest"].(string)
	m, err := models.ManifestInVersion(s.db.WithContext(c), repo, repo.LatestNumber, digest)
	if models.IsNotFound(err) {
		err = models.NewValidationError("non_field_errors", models.ManifestMissingMessage(digest, repo))
	}
	if err != nil {
		return err
	}
	return s.dispatchOn(c, repo, tasks.NameTagImage, tasks.TagArgs{RepositoryID: repo.ID, ManifestID: m.ID, Tag: name})
}

// untag answers untag/ on a repository of kind k: the tag must be in the latest version.
func (s *Server) untag(c *gin.Context, k models.Kind, id string) error {
	repo, in, err := s.actionInput(c, k, id, untagImageSerializer)
	if err != nil {
		return err
	}
	name := in.merged["tag"].(string)
	ids, err := models.TagIDsInVersion(s.db.WithContext(c), repo, repo.LatestNumber, []string{name})
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return models.NewValidationError("non_field_errors", models.TagMissingMessage(name, repo))
	}
	return s.dispatchOn(c, repo, tasks.NameUntagImage, tasks.TagArgs{RepositoryID: repo.ID, Tag: name})
}

// RepositoriesContainerContainerTag tags a manifest of the latest version (task tag_image).
func (s *Server) RepositoriesContainerContainerTag(c *gin.Context, id string) {
	s.respond(c, s.tag(c, models.KindContainerRepository, id))
}

// RepositoriesContainerContainerUntag removes a tag (task untag_image).
func (s *Server) RepositoriesContainerContainerUntag(c *gin.Context, id string) {
	s.respond(c, s.untag(c, models.KindContainerRepository, id))
}

// RepositoriesContainerContainerPushTag tags a manifest of a push repository.
func (s *Server) RepositoriesContainerContainerPushTag(c *gin.Context, id string) {
	s.respond(c, s.tag(c, models.KindPushRepository, id))
}

// RepositoriesContainerContainerPushUntag removes a tag from a push repository.
func (s *Server) RepositoriesContainerContainerPushUntag(c *gin.Context, id string) {
	s.respond(c, s.untag(c, models.KindPushRepository, id))
}

// RepositoriesContainerContainerPushRemoveImage removes a manifest of the latest version with
// its tags, recursively (task recursive_remove_content).
func (s *Server) RepositoriesContainerContainerPushRemoveImage(c *gin.Context, id string) {
	s.respond(c, s.removeImage(c, id))
}

func (s *Server) removeImage(c *gin.Context, id string) error {
	repo, in, err := s.actionInput(c, models.KindPushRepository, id, removeImageSerializer)
	if err != nil {
		return err
	}
	digest := in.merged["digest"].(string)
	db := s.db.WithContext(c)
	m, err := models.ManifestInVersion(db, repo, repo.LatestNumber, digest)
	if models.IsNotFound(err) {
		err = models.NewValidationError("non_field_errors", models.ManifestMissingMessage(digest, repo))
	}
	if err != nil {
		return err
	}
	units, err := models.TagIDsOfManifest(db, repo, repo.LatestNumber, m.ID)
	if err != nil {
		return err
	}
	units = append(units, m.ID)
	return s.dispatchOn(c, repo, tasks.NameRecursiveRemove, tasks.ContentArgs{RepositoryID: repo.ID, ContentUnits: units})
}

// copySource resolves the source of a copy: source_repository (its latest version) or
// source_repository_version, exactly one of them.
func (s *Server) copySource(c *gin.Context, in *input) (*models.Repository, int64, error) {
	_, hasRepo := in.merged["source_repository"]
	_, hasVersion := in.merged["source_repository_version"]
	switch {
	case !hasRepo && !hasVersion:
		return nil, 0, models.NewValidationError("non_field_errors",
			"Either the 'repository' or 'repository_version' needs to be specified")
	case hasRepo && hasVersion:
		return nil, 0, models.NewValidationError("non_field_errors",
			"Either the 'repository' or 'repository_version' need to be specified but not both.")
	}
	db := s.db.WithContext(c)
	var repo models.Repository
	if hasRepo {
		ref, _ := models.ParseRef(in.merged["source_repository"].(string))
		if err := db.Take(&repo, "id = ?", ref.ID).Error; err != nil {
			return nil, 0, err
		}
		return &repo, repo.LatestNumber, nil
	}
	var v models.RepositoryVersion
	if err := db.Take(&v, "id = ?", rawString(in.values["source_repository_version"])).Error; err != nil {
		return nil, 0, err
	}
	if err := db.Take(&repo, "id = ?", v.RepositoryID).Error; err != nil {
		return nil, 0, err
	}
	return &repo, v.Number, nil
}

// rawString decodes a JSON string value ("" when it is not one).
func rawString(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// copyContent answers copy_tags/ and copy_manifests/: units picks the ids to copy from the
// source version; they are added recursively (task recursive_add_content).
func (s *Server) copyContent(c *gin.Context, id string, ser *serializer,
	units func(in *input, src *models.Repository, n int64) ([]string, error)) error {
	repo, in, err := s.actionInput(c, models.KindContainerRepository, id, ser)
	if err != nil {
		return err
	}
	src, n, err := s.copySource(c, in)
	if err != nil {
		return err
	}
	ids, err := units(in, src, n)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	return s.dispatchOn(c, repo, tasks.NameRecursiveAdd, tasks.ContentArgs{RepositoryID: repo.ID, ContentUnits: ids}, src)
}

// listParam returns the list field name of in, or nil when the body did not carry it.
func listParam(in *input, name string) []string {
	if v, ok := in.merged[name].([]string); ok {
		return v
	}
	return nil
}

// RepositoriesContainerContainerCopyTags copies tags (all, or those in names) from a source
// repository or version, with their manifests and blobs.
func (s *Server) RepositoriesContainerContainerCopyTags(c *gin.Context, id string) {
	s.respond(c, s.copyContent(c, id, tagCopySerializer, func(in *input, src *models.Repository, n int64) ([]string, error) {
		return models.TagIDsInVersion(s.db.WithContext(c), src, n, listParam(in, "names"))
	}))
}

// RepositoriesContainerContainerCopyManifests copies manifests (filtered by digests and
// media_types) from a source repository or version, with what they need.
func (s *Server) RepositoriesContainerContainerCopyManifests(c *gin.Context, id string) {
	s.respond(c, s.copyContent(c, id, manifestCopySerializer, func(in *input, src *models.Repository, n int64) ([]string, error) {
		return models.ManifestIDsInVersion(s.db.WithContext(c), src, n, listParam(in, "digests"), listParam(in, "media_types"))
	}))
}

// actionInput starts a content action on repository id of kind k: the repository, which must
// be writable, and the body bound to ser.
func (s *Server) actionInput(c *gin.Context, k models.Kind, id string, ser *serializer) (*models.Repository, *input, error) {
	repo, err := s.writableRepository(c, k, id)
	if err != nil {
		return nil, nil, err
	}
	in, err := s.bind(c, ser, modeCreate, nil)
	if err != nil {
		return nil, nil, err
	}
	return repo, in, nil
}
