-- When an order's customer data was erased (POST /v1/customers/{id}/erase); NULL for an order
-- never erased. The order's representation changes with an erasure (its details, customer and
-- drop-off go) while its version does not: its entity tag takes this in, so that a client holding
-- the erased data is not told by a 304 that it is current, and an integrator sees that, and when,
-- the order was erased. A nullable column without a default: no table rewrite.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS erased_at timestamptz;
