with entries as (
    select entry_date, '1100' as account, 'Accounts receivable' as account_name, revenue as debit, 0 as credit, 'sales' as source from daily_sales
    union all
    select entry_date, '4000', 'Product revenue', 0, revenue, 'sales' from daily_sales
    union all
    select entry_date, '5000', 'Cost of goods sold', cogs, 0, 'sales' from daily_sales
    union all
    select entry_date, '1300', 'Inventory', 0, cogs, 'sales' from daily_sales
    union all
    select entry_date, '6100', 'Outbound freight', freight, 0, 'logistics' from daily_freight
    union all
    select entry_date, '2100', 'Carrier payables', 0, freight, 'logistics' from daily_freight
)
select
    row_number() over (order by entry_date, account)  as entry_id,
    entry_date,
    account,
    account_name,
    cast(debit as DECIMAL(14,2))                       as debit,
    cast(credit as DECIMAL(14,2))                      as credit,
    source
from entries
order by entry_id
