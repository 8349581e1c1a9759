// Package doctest proves that the documentation's examples work as pasted. Its test extracts
// every shell block of README.md and docs/*.md and runs them, in order, in one bash session
// against a freshly installed ordercast, and checks that the README's Go snippet is the client
// package's Example, which `go test` compiles and runs. See doctest_test.go for the conventions.
package doctest
