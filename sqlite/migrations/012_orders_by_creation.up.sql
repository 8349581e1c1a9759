-- Every order, ended ones too, keyed by creation, for GET /v1/orders (Store.ListOrders): a point
-- of sale reads its restaurant's day in pages, oldest first, and admin every order. created_at,
-- restaurant_id and id never change, so a status change writes no entry of either index; a
-- create writes one in each.
CREATE INDEX orders_restaurant_created ON orders (restaurant_id, created_at, id);
CREATE INDEX orders_created ON orders (created_at, id);
