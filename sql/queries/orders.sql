-- OrderInsert runs first in the order transaction: a repeat buyer fails here
-- on orders_one_per_user_per_sale before touching the hot products row.
-- name: OrderInsert :one
INSERT INTO orders (id, flash_sale_id, product_id, user_id, status)
VALUES (@id, @flash_sale_id, @product_id, @user_id, 'confirmed')
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
