package reposync

import "encoding/json"

// manifest is what the tests read of a manifest or index.
type manifest struct {
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
	Config struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest string `json:"digest"`
	} `json:"layers"`
}

func parse(raw []byte) (*manifest, error) {
	var m manifest
	return &m, json.Unmarshal(raw, &m)
}

func (m *manifest) layerDigests() []string {
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}
