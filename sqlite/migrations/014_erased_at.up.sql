-- When an order's customer data was erased (POST /v1/customers/{id}/erase), in microseconds since
-- the epoch as every time here; NULL for an order never erased. The order's representation
-- changes with an erasure (its details, customer and drop-off go) while its version does not: its
-- entity tag takes this in, so that a client holding the erased data is not told by a 304 that
-- it is current, and an integrator sees that, and when, the order was erased.
ALTER TABLE orders ADD COLUMN erased_at INTEGER;
