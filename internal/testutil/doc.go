// Package testutil holds helpers shared by the tests of several packages.
//
// It imports nothing of the project, only the standard library, so that any
// package's tests can use it without depending on another part of the
// project; protocol/arch_test.go checks this.
package testutil
