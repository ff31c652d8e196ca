package api

// ProjectPut is the writable part of a project (PUT /1.0/projects/{name}).
type ProjectPut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
}

// ProjectsPost is the body of POST /1.0/projects.
type ProjectsPost struct {
	ProjectPut `yaml:",inline"`
	Name       string `json:"name" yaml:"name"`
}

// Project is a project as returned by GET /1.0/projects/{name}.
type Project struct {
	ProjectPut `yaml:",inline"`
	Name       string   `json:"name" yaml:"name"`
	UsedBy     []string `json:"used_by" yaml:"used_by"`
}
