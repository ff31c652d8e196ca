package api

// ImagesPost is the JSON body of POST /1.0/images (publishing an instance or snapshot).
type ImagesPost struct {
	ImagePut             `yaml:",inline"`
	Filename             string            `json:"filename" yaml:"filename"`
	Source               *ImagesPostSource `json:"source" yaml:"source"`
	CompressionAlgorithm string            `json:"compression_algorithm" yaml:"compression_algorithm"`
	Aliases              []ImageAlias      `json:"aliases" yaml:"aliases"`
}

// ImagesPostSource names what to make an image from: type "instance" (or "container")
// with name NAME, or "snapshot" with name NAME/SNAP.
type ImagesPostSource struct {
	Type        string `json:"type" yaml:"type"`
	Name        string `json:"name" yaml:"name"`
	Fingerprint string `json:"fingerprint" yaml:"fingerprint"`
	Alias       string `json:"alias" yaml:"alias"`
	Server      string `json:"server" yaml:"server"`
	Protocol    string `json:"protocol" yaml:"protocol"`
	Mode        string `json:"mode" yaml:"mode"`
	URL         string `json:"url" yaml:"url"`
	// Of type "image" (mode "pull"): the PEM certificate the server must present, and
	// the secret granting a private image.
	Certificate string `json:"certificate" yaml:"certificate"`
	Secret      string `json:"secret" yaml:"secret"`
}

// ImageExportPost is the body of POST /1.0/images/{fingerprint}/export: push the image
// to another server (lxc image copy --mode push). Target is its URL, Certificate the PEM
// certificate it must present, Secret the push token it issued (POST /1.0/images with
// source mode "push").
type ImageExportPost struct {
	Target      string       `json:"target" yaml:"target"`
	Secret      string       `json:"secret" yaml:"secret"`
	Certificate string       `json:"certificate" yaml:"certificate"`
	Aliases     []ImageAlias `json:"aliases" yaml:"aliases"`
	Project     string       `json:"project" yaml:"project"`
}
