//go:build tools

// Package tools pins the Pulumi CLI that the project builds from Go modules.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
