package sqlite_test

import "github.com/ordercast/ordercast/internal/retention"

// purgeConfigs are the retention settings BenchmarkPurgeBacklog compares.
var purgeConfigs = []struct {
	name string
	cfg  retention.Config
}{
	{"defaults", retention.Config{}},
}
