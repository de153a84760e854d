// Package openapiv2 embeds the OpenAPI document that buf generates next to
// this file (flashsale.swagger.json). This file is the only one here not
// written by buf.
package openapiv2

import _ "embed"

// JSON is the merged OpenAPI v2 document of the flashsale API.
//
//go:embed flashsale.swagger.json
var JSON []byte
