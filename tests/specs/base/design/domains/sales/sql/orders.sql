select o.order_id, c.email, c.region, o.amount
from stg_orders o join customers c using (customer_id)
