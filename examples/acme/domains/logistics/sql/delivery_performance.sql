select
    month,
    destination_region,
    carrier,
    count(*)                                          as shipments,
    count(*) filter (where delivered)                 as delivered,
    count(*) filter (where on_time)                   as on_time,
    round(count(*) filter (where on_time) / nullif(count(*) filter (where delivered), 0), 4) as on_time_rate,
    round(avg(transit_days), 2)                       as avg_transit_days,
    round(avg(days_to_ship), 2)                       as avg_days_to_ship,
    cast(sum(shipping_cost) as DECIMAL(14,2))         as shipping_cost
from shipment_facts
group by month, destination_region, carrier
order by month, destination_region, carrier
