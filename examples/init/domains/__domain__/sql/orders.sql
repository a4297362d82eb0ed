-- Cleanse the raw export: typed columns, no rows without an id.
select
  cast(order_id as bigint)          as order_id,
  cast(order_date as date)          as order_date,
  lower(trim(customer_email))       as customer_email,
  cast(amount as decimal(10, 2))    as amount_eur
from raw_orders
where order_id is not null
order by order_id
