package models_test

import (
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/pulpgo/pulpgo/models"
)

func TestLabelSelect(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		labels := map[string]models.Labels{
			"web":     {"env": "dev", "tier": "web"},
			"prod":    {"env": "prod"},
			"none":    {},
			"long":    {"env": "Development"},
			"upper":   {"Env": "DEV"},
			"devil":   {"env": "devil"},
			"comma":   {"list": "a,b"},
			"spaced":  {"my key": "x y"},
			"percent": {"p": "100%_done"},
			"valkey":  {"other": "env"},
			"cross":   {"env": "prod", "x": "dev"},
		}
		now := models.Now()
		for name, l := range labels {
			r := &models.Remote{ID: models.NewID(), PulpType: models.KindPullThroughRemote.PulpType, Name: name,
				URL: "https://x", PulpLabels: l, PulpCreated: now, PulpLastUpdated: now}
			if err := db.Create(r).Error; err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			expr string
			want []string
		}{
			{"env", []string{"cross", "devil", "long", "prod", "web"}},
			{"!env", []string{"comma", "none", "percent", "spaced", "upper", "valkey"}},
			{"env=dev", []string{"web"}},
			{"env!=dev", []string{"cross", "devil", "long", "prod"}},
			{"env~dev", []string{"devil", "long", "web"}},
			{"env~DEV", []string{"devil", "long", "web"}},
			{"env~elo", []string{"long"}},
			{"env~ro", []string{"cross", "prod"}},
			{"x~DE", []string{"cross"}},
			{"Env", []string{"upper"}},
			{"Env=DEV", []string{"upper"}},
			{"Env~dev", []string{"upper"}},
			{"env=DEV", nil},
			{"env=dev,tier", []string{"web"}},
			{"env=dev,tier=web", []string{"web"}},
			{"env,!tier", []string{"cross", "devil", "long", "prod"}},
			{"tier=api", nil},
			{`list=a\,b`, []string{"comma"}},
			{"list=a", nil},
			{"my key=x y", []string{"spaced"}},
			{"my key~X", []string{"spaced"}},
			{"p=100%_done", []string{"percent"}},
			{"p~%", []string{"percent"}},
			{"p~0%", []string{"percent"}},
			{"p=100%", nil},
			{"p~1_0", nil},
			// pulpcore's regex ignores what follows a key without an operator.
			{"tier!", []string{"web"}},
			{"my key$x", []string{"spaced"}},
			// No trimming: " tier" is a key with a leading space.
			{"env, tier", nil},
			{"env==dev", nil},
		}
		for _, c := range cases {
			t.Run(c.expr, func(t *testing.T) {
				q, err := models.LabelSelect(db.Model(&models.Remote{}), "pulp_labels", c.expr)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				if err := q.Order("name").Pluck("name", &got).Error; err != nil {
					t.Fatal(err)
				}
				if len(got) != 0 || len(c.want) != 0 {
					if !reflect.DeepEqual(got, c.want) {
						t.Errorf("%q selects %v, want %v", c.expr, got, c.want)
					}
				}
			})
		}
	})
}

func TestLabelSelectInvalid(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		cases := map[string]string{
			"==":       "Invalid search term: '=='.",
			"":         "Invalid search term: ''.",
			"env,":     "Invalid search term: ''.",
			"!":        "Invalid search term: '!'.",
			"!!env":    "Invalid search term: '!!env'.",
			"=dev":     "Invalid search term: '=dev'.",
			"env,~x":   "Invalid search term: '~x'.",
			"$env":     "Invalid search term: '$env'.",
			"!env=dev": "Cannot use an operator with '!env'.",
			"!env~d":   "Cannot use an operator with '!env'.",
			"a,!b!=c":  "Cannot use an operator with '!b'.",
			`x\,,\,y`:  `Invalid search term: '\,y'.`,
		}
		for expr, want := range cases {
			_, err := models.LabelSelect(db.Model(&models.Remote{}), "pulp_labels", expr)
			var bl *models.BareListError
			if !errors.As(err, &bl) || bl.Msg != want {
				t.Errorf("%q: error %v, want %q", expr, err, want)
			}
		}
		for _, expr := range []string{"a", "!a", "a=", "a=b", "a!=b", "a~b", "a.b-c_d e", "ключ=значение", "a=b,c~d,!e"} {
			if _, err := models.LabelSelect(db.Model(&models.Remote{}), "pulp_labels", expr); err != nil {
				t.Errorf("%q: %v", expr, err)
			}
		}
	})
}

func TestListSpecApply(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		now := models.Now()
		for _, n := range []string{"alpha", "Beta", "gamma_1", "gamma%2"} {
			ns := &models.Namespace{ID: models.NewID(), Name: n, PulpLabels: models.Labels{}, PulpCreated: now, PulpLastUpdated: now}
			if err := db.Create(ns).Error; err != nil {
				t.Fatal(err)
			}
		}
		spec := &models.ListSpec{Model: &models.Namespace{}, Columns: map[string]string{"name": "name"}}
		cases := []struct {
			filter, value string
			want          []string
		}{
			{"name", "alpha", []string{"alpha"}},
			{"name", "ALPHA", nil},
			{"name__iexact", "ALPHA", []string{"alpha"}},
			{"name__in", "alpha,Beta,nope", []string{"Beta", "alpha"}},
			{"name__ne", "alpha", []string{"Beta", "gamma%2", "gamma_1"}},
			{"name__contains", "eta", []string{"Beta"}},
			{"name__contains", "ETA", nil},
			{"name__contains", "_", []string{"gamma_1"}},
			{"name__contains", "%", []string{"gamma%2"}},
			{"name__icontains", "BET", []string{"Beta"}},
			{"name__icontains", "_", []string{"gamma_1"}},
			{"name__startswith", "b", nil},
			{"name__startswith", "B", []string{"Beta"}},
			{"name__istartswith", "b", []string{"Beta"}},
			{"name__istartswith", "gamma_", []string{"gamma_1"}},
		}
		for _, c := range cases {
			t.Run(c.filter+"="+c.value, func(t *testing.T) {
				q, err := spec.Apply(db, map[string]string{c.filter: c.value})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				if err := q.Pluck("name", &got).Error; err != nil {
					t.Fatal(err)
				}
				sort.Strings(got)
				if len(got) != 0 || len(c.want) != 0 {
					if !reflect.DeepEqual(got, c.want) {
						t.Errorf("got %v, want %v", got, c.want)
					}
				}
			})
		}
		if _, err := spec.Apply(db, map[string]string{"bogus": "1"}); err == nil || err.Error() != "Invalid Filter: 'bogus'" {
			t.Errorf("unknown filter: %v", err)
		}
	})
}

func TestGetOrCreateBlobConcurrent(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		const n = 20
		d := digest("shared layer")
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				b, err := models.GetOrCreateBlob(db, &models.Blob{Digest: d, Size: 12})
				errs[i] = err
				if err == nil {
					ids[i] = b.ID
				}
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("goroutine %d: %v", i, err)
			}
			if ids[i] != ids[0] {
				t.Errorf("goroutine %d got blob %s, goroutine 0 got %s", i, ids[i], ids[0])
			}
		}
		var count int64
		if err := db.Model(&models.Blob{}).Where("digest = ?", d).Count(&count).Error; err != nil {
			t.Fatal(err)
		}
		if count != 1 {
			t.Errorf("%d rows for one digest", count)
		}
	})
}

func TestGetOrCreateManifestAndTag(t *testing.T) {
	runDB(t, func(t *testing.T, db *gorm.DB) {
		cfg, layer := blob(t, db, "cfg"), blob(t, db, "layer")
		mk := func() *models.Manifest {
			m, err := models.GetOrCreateManifest(db, &models.Manifest{Digest: digest("m"), MediaType: models.MediaTypeOCIManifest,
				SchemaVersion: 2, ConfigBlobID: &cfg.ID}, []string{layer.ID}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		m1, m2 := mk(), mk()
		if m1.ID != m2.ID {
			t.Errorf("two manifests for one digest: %s, %s", m1.ID, m2.ID)
		}
		s, err := m1.Serialize(db, "")
		if err != nil {
			t.Fatal(err)
		}
		if s["config_blob"] != cfg.Href() || s["digest"] != digest("m") || s["media_type"] != models.MediaTypeOCIManifest {
			t.Errorf("manifest %v", s)
		}
		jsonEq(t, s["blobs"], `["`+layer.Href()+`"]`)
		t1, err := models.GetOrCreateTag(db, "latest", m1.ID)
		if err != nil {
			t.Fatal(err)
		}
		t2, err := models.GetOrCreateTag(db, "latest", m1.ID)
		if err != nil || t1.ID != t2.ID {
			t.Errorf("tag twice: %v %v %v", t1.ID, t2, err)
		}
	})
}
