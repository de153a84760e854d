-- OrderInsert runs first in the order transaction: a repeat buyer fails here
-- on orders_one_per_user_per_sale before touching the hot products row.
-- OrderInsert stores an order with the time the service took it, so the
-- order a caller was shown and the one stored are the same.
-- name: OrderInsert :one
INSERT INTO orders (id, flash_sale_id, product_id, user_id, status, created_at)
VALUES (@id, @flash_sale_id, @product_id, @user_id, 'confirmed', @created_at)
RETURNING *;

-- name: OrderGetBySaleUser :one
SELECT * FROM orders
WHERE flash_sale_id = @flash_sale_id
  AND user_id = @user_id;

-- OrderList pages newest first (UUIDv7 ids sort by creation). A NULL user_id
-- or flash_sale_id matches any; a NULL after starts the list.
-- name: OrderList :many
SELECT * FROM orders
WHERE (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id)::uuid)
  AND (sqlc.narg(flash_sale_id)::uuid IS NULL OR flash_sale_id = sqlc.narg(flash_sale_id)::uuid)
  AND (sqlc.narg(after)::uuid IS NULL OR id < sqlc.narg(after)::uuid)
ORDER BY id DESC
LIMIT @max;

-- OrderInsertBatch inserts a batch of confirmed orders in one statement; the
-- arrays are zipped row by row, created_at being when the service took each
-- order (a queued order's PENDING answer carried the same time). ON CONFLICT DO NOTHING skips an order whose id
-- is already there (a replay) and one whose user already has an order in the
-- sale (orders_one_per_user_per_sale); the store tells the two apart with
-- OrderIDsExisting. RETURNING lists only the rows inserted now.
-- name: OrderInsertBatch :many
INSERT INTO orders (id, flash_sale_id, product_id, user_id, status, created_at)
SELECT unnest(@ids::uuid[]),
       unnest(@flash_sale_ids::uuid[]),
       unnest(@product_ids::uuid[]),
       unnest(@user_ids::uuid[]),
       'confirmed',
       unnest(@created_ats::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING id;

-- OrderInsertBatchTakeStock is a whole batch in one statement, committed on
-- its own: the insert of OrderInsertBatch, then one UPDATE per product taking
-- as many units as orders were inserted now. Its guard is the
-- products_quantity_nonnegative CHECK: when a product has fewer units left
-- than the batch inserted, the statement fails as a whole and nothing is
-- written (the store then runs the batch the slow way, taking what is left).
-- Concurrent batches queue on the product's row lock, and each re-evaluates
-- its UPDATE against the row as the previous one committed it. Holding that
-- lock only inside the server, not across a client round trip to COMMIT, is
-- the point. RETURNING lists only the rows inserted now.
-- name: OrderInsertBatchTakeStock :many
WITH inserted AS (
    INSERT INTO orders (id, flash_sale_id, product_id, user_id, status, created_at)
    SELECT unnest(@ids::uuid[]),
           unnest(@flash_sale_ids::uuid[]),
           unnest(@product_ids::uuid[]),
           unnest(@user_ids::uuid[]),
           'confirmed',
           unnest(@created_ats::timestamptz[])
    ON CONFLICT DO NOTHING
    RETURNING id, product_id
), taken AS (
    UPDATE products p
    SET quantity = p.quantity - t.n
    FROM (SELECT i.product_id, count(*)::integer AS n FROM inserted i GROUP BY i.product_id) t
    WHERE p.id = t.product_id
    RETURNING p.id
)
SELECT inserted.id FROM inserted;

-- name: OrderIDsExisting :many
SELECT id FROM orders WHERE id = ANY(@ids::uuid[]);

-- OrderDeleteByIDs drops orders inserted earlier in the same batch transaction
-- that the product's stock cannot cover.
-- name: OrderDeleteByIDs :execrows
DELETE FROM orders WHERE id = ANY(@ids::uuid[]);

-- ProductTakeStockN takes n units of stock for a batch of n orders, and
-- affects no row when fewer than n are left. The guard `quantity >= n` is what
-- prevents overselling: concurrent takers queue on the row lock and each
-- re-evaluates the WHERE clause against the row as the previous one committed
-- it, so the stock never goes below zero (0 rows -> the batch takes what is
-- left instead, see ProductQuantityLock). The products_quantity_nonnegative
-- CHECK backs it up. (Kept here, beside the batch insert it serves.)
-- name: ProductTakeStockN :execrows
UPDATE products
SET quantity = quantity - @n::integer
WHERE id = @id
  AND quantity >= @n::integer;

-- ProductQuantityLock reads a product's stock and locks its row until the
-- transaction ends, so what it reads is what the next UPDATE can take.
-- name: ProductQuantityLock :one
SELECT quantity FROM products WHERE id = @id FOR UPDATE;

-- OrderBuyersBySales lists who bought in the sales: their buyers as the
-- admission gate must know them (see ProductSnapshot).
-- name: OrderBuyersBySales :many
SELECT flash_sale_id, user_id, id FROM orders
WHERE flash_sale_id = ANY(@sale_ids::uuid[]);
