-- name: ProductCreate :one
INSERT INTO products (id, name, description, price_minor, currency, quantity)
VALUES (@id, @name, @description, @price_minor, @currency, @quantity)
RETURNING *;

-- name: ProductGet :one
SELECT * FROM products WHERE id = @id;

-- ProductList pages by id; the nil uuid sorts first, so it starts the list.
-- name: ProductList :many
SELECT * FROM products
WHERE id > @after
ORDER BY id
LIMIT @max;

-- ProductTakeStock takes one unit of stock, and affects no row when none is
-- left. The guard `quantity > 0` is what prevents overselling: concurrent
-- takers queue on the row lock, and each re-evaluates the WHERE clause against
-- the row as the previous one committed it, so once the stock reaches zero every
-- later UPDATE matches nothing (0 rows -> sold out) instead of going negative.
-- The products_quantity_nonnegative CHECK backs it up.
-- name: ProductTakeStock :execrows
UPDATE products
SET quantity = quantity - 1
WHERE id = @id
  AND quantity > 0;
