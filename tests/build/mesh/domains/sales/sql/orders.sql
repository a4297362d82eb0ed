select o.order_id, o.customer_id, c.region, o.amount
from raw_orders o
join customers c using (customer_id)
