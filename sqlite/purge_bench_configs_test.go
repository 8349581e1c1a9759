package sqlite_test

import "github.com/ordercast/ordercast/internal/retention"

// purgeConfigs are the retention settings BenchmarkPurgeBacklog compares: 200 orders a
// transaction with a 50 ms pause (the defaults, which PostgreSQL keeps, and SQLite's before
// 2026-12), and what serve runs on SQLite.
var purgeConfigs = []struct {
	name string
	cfg  retention.Config
}{
	{"batch=200", retention.Config{}},
	{"sqlite", retention.Config{TxTime: retention.WriterTxTime, Pause: retention.WriterPause}},
}
