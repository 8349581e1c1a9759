-- Where an order is picked up and dropped off, when known: a courier's distance and ETA are
-- measured to the drop-off. Each is {"lat":…,"lng":…} as ordercast encodes it, or NULL.
ALTER TABLE orders ADD COLUMN pickup TEXT;
ALTER TABLE orders ADD COLUMN dropoff TEXT;
