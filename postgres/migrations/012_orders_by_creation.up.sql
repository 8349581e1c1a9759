-- Every order, ended ones too, keyed by creation, for GET /v1/orders (Store.ListOrders): a point
-- of sale reads its restaurant's day in pages, oldest first, and admin every order. Orders of one
-- time are listed by id byte by byte, as SQLite lists them (migration 009). created_at,
-- restaurant_id and id never change, so a status change is still a HOT update (see
-- docs/performance.md); a create writes one entry in each. IF NOT EXISTS: an operator of a large
-- table may build them beforehand with CREATE INDEX CONCURRENTLY, under these names (docs/deploy.md).
CREATE INDEX IF NOT EXISTS orders_restaurant_created ON orders (restaurant_id, created_at, id COLLATE "C");
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at, id COLLATE "C");
