-- Canopy example mesh "acme": source data generator.
-- Run by `canopy example DIR --scale N` with DuckDB 1.4.4 in an in-memory database after
-- substituting the scale and the mesh folder for the two placeholders.
-- Every value is derived from hash() of a row number, never random(), and every file is written
-- ordered by its key, so one scale always produces byte-identical files.
-- Scale 1: ~100k customers, ~250k orders, ~1M order lines, ~260k shipments, over the two years
-- 2024-07-01 .. 2026-06-30. Row counts follow the scale with small floors.

SET VARIABLE n_customers = greatest(CAST(round(100000 * {{scale}}) AS BIGINT), 50);

SET VARIABLE n_orders = greatest(CAST(round(250000 * {{scale}}) AS BIGINT), 200);

SET VARIABLE n_products = 400;

-- 70% of customers signed up before the window (2017-01-01 .. 2024-06-30), 30% during it.
SET VARIABLE n_old_customers = CAST(floor(getvariable('n_customers') * 0.7) AS BIGINT);

SET VARIABLE n_new_customers = getvariable('n_customers') - getvariable('n_old_customers');

-- h(key, salt, m): a deterministic pseudo-random integer in [0, m).
CREATE MACRO h(k, salt, m) AS CAST(hash(k, salt) % CAST(m AS UBIGINT) AS BIGINT);

-- pick(list, key, salt): a deterministic pseudo-random element of a list.
CREATE MACRO pick(l, k, salt) AS l[1 + h(k, salt, len(l))];

CREATE TABLE countries AS
SELECT * FROM (VALUES
    (0,  'US', '+1',  ['New York', 'Chicago', 'Austin', 'Seattle'],        ['10001', '60601', '73301', '98101']),
    (1,  'US', '+1',  ['Boston', 'Denver', 'Atlanta', 'San Diego'],        ['02108', '80202', '30301', '92101']),
    (2,  'US', '+1',  ['Miami', 'Phoenix', 'Portland', 'Detroit'],         ['33101', '85001', '97201', '48201']),
    (3,  'US', '+1',  ['Dallas', 'Nashville', 'Columbus', 'Raleigh'],      ['75201', '37201', '43004', '27601']),
    (4,  'US', '+1',  ['Houston', 'Philadelphia', 'Salt Lake City', 'Omaha'], ['77001', '19019', '84101', '68101']),
    (5,  'US', '+1',  ['Minneapolis', 'Kansas City', 'Tampa', 'Pittsburgh'], ['55401', '64101', '33601', '15201']),
    (6,  'DE', '+49', ['Berlin', 'Hamburg', 'Munich', 'Cologne'],          ['10115', '20095', '80331', '50667']),
    (7,  'DE', '+49', ['Frankfurt', 'Stuttgart', 'Leipzig', 'Dresden'],    ['60311', '70173', '04109', '01067']),
    (8,  'FR', '+33', ['Paris', 'Lyon', 'Marseille', 'Toulouse'],          ['75001', '69001', '13001', '31000']),
    (9,  'FR', '+33', ['Nice', 'Nantes', 'Bordeaux', 'Lille'],             ['06000', '44000', '33000', '59000']),
    (10, 'NL', '+31', ['Amsterdam', 'Rotterdam', 'Utrecht', 'Eindhoven'],  ['1011', '3011', '3511', '5611']),
    (11, 'ES', '+34', ['Madrid', 'Barcelona', 'Valencia', 'Seville'],      ['28001', '08001', '46001', '41001']),
    (12, 'IT', '+39', ['Rome', 'Milan', 'Turin', 'Bologna'],               ['00118', '20121', '10121', '40121']),
    (13, 'SE', '+46', ['Stockholm', 'Gothenburg', 'Malmo', 'Uppsala'],     ['11120', '41101', '21115', '75220']),
    (14, 'PL', '+48', ['Warsaw', 'Krakow', 'Gdansk', 'Wroclaw'],           ['00-001', '30-001', '80-001', '50-001']),
    (15, 'JP', '+81', ['Tokyo', 'Osaka', 'Yokohama', 'Sapporo'],           ['100-0001', '530-0001', '220-0001', '060-0001']),
    (16, 'AU', '+61', ['Sydney', 'Melbourne', 'Brisbane', 'Perth'],        ['2000', '3000', '4000', '6000']),
    (17, 'SG', '+65', ['Singapore', 'Singapore', 'Singapore', 'Singapore'], ['018989', '238859', '179103', '068811']),
    (18, 'BR', '+55', ['Sao Paulo', 'Rio de Janeiro', 'Curitiba', 'Recife'], ['01000-000', '20000-000', '80000-000', '50000-000']),
    (19, 'MX', '+52', ['Mexico City', 'Guadalajara', 'Monterrey', 'Puebla'], ['01000', '44100', '64000', '72000'])
) t(slot, country, dial, cities, postcodes);

-- Customers: the CRM export, newline-delimited JSON with a nested address. About 2.5% of the
-- customers appear twice (an older snapshot and the current one), some e-mails arrive in upper
-- case with stray spaces, about 8% have no phone number.
CREATE TABLE gen_customers AS
WITH base AS (
    SELECT
        k,
        k + 1 AS customer_id,
        CASE WHEN k < getvariable('n_old_customers')
             THEN -2738 + (k * 2738) // getvariable('n_old_customers')
             ELSE ((k - getvariable('n_old_customers')) * 730) // getvariable('n_new_customers')
        END AS signup_day,
        pick(['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda', 'David', 'Elizabeth',
              'Anna', 'Lukas', 'Sophie', 'Jonas', 'Emma', 'Louis', 'Chloe', 'Hugo', 'Lea', 'Mateo',
              'Sofia', 'Lucia', 'Marco', 'Giulia', 'Lars', 'Ingrid', 'Piotr', 'Zofia', 'Sem', 'Julia',
              'Haruto', 'Yui', 'Oliver', 'Charlotte', 'Wei', 'Mei', 'Gabriel', 'Ana', 'Diego', 'Valentina'], k, 'first') AS first_name,
        pick(['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Martin', 'Muller',
              'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Dubois', 'Bernard', 'Moreau', 'Laurent', 'De Vries', 'Jansen',
              'Lopez', 'Fernandez', 'Rossi', 'Russo', 'Ferrari', 'Johansson', 'Nowak', 'Kowalski', 'Sato', 'Suzuki',
              'Tanaka', 'Taylor', 'Wilson', 'Tan', 'Lim', 'Silva', 'Santos', 'Hernandez', 'Gonzalez', 'Ramirez'], k, 'last') AS last_name,
        h(k, 'country', 20) AS slot,
        h(k, 'city', 4) + 1 AS city_idx,
        pick(['consumer', 'consumer', 'consumer', 'consumer', 'consumer', 'consumer', 'smb', 'smb', 'smb', 'enterprise'], k, 'segment') AS segment,
        h(k, 'dup', 40) = 0 AS has_old_version,
        h(k, 'phone', 100) < 8 AS no_phone,
        h(k, 'mailcase', 25) = 0 AS messy_email,
        h(k, 'optin', 100) < 62 AS marketing_opt_in
    FROM range(getvariable('n_customers')) r(k)
)
SELECT
    b.*,
    DATE '2024-07-01' + CAST(b.signup_day AS INTEGER) AS signup_date,
    c.country,
    c.cities[b.city_idx] AS city,
    c.postcodes[b.city_idx] AS postcode,
    CASE WHEN b.no_phone THEN NULL
         ELSE c.dial || ' ' || lpad(CAST(h(b.k, 'ph1', 1000) AS VARCHAR), 3, '0') || ' '
              || lpad(CAST(h(b.k, 'ph2', 10000000) AS VARCHAR), 7, '0') END AS phone,
    lower(replace(b.first_name, ' ', '')) || '.' || lower(replace(b.last_name, ' ', '')) || CAST(b.customer_id AS VARCHAR)
        || '@' || pick(['example.com', 'mail.example.org', 'inbox.example.net', 'corp.example.com'], b.k, 'maildomain') AS clean_email,
    CAST(CASE b.segment WHEN 'consumer' THEN 500 + 250 * h(b.k, 'credit', 19)
                        WHEN 'smb' THEN 10000 + 2500 * h(b.k, 'credit', 37)
                        ELSE 100000 + 25000 * h(b.k, 'credit', 37) END AS DECIMAL(12, 2)) AS credit_limit,
    -- seconds between signup and the last instant of the window
    (729 - b.signup_day) * 86400 + 86399 AS seconds_available
FROM base b
JOIN countries c ON c.slot = b.slot;

COPY (
    SELECT customer_id, first_name, last_name, email, phone, segment, signup_date, credit_limit,
           marketing_opt_in, address, updated_at
    FROM (
        SELECT
            customer_id,
            first_name,
            last_name,
            CASE WHEN messy_email THEN ' ' || upper(clean_email) || ' ' ELSE clean_email END AS email,
            phone,
            segment,
            signup_date,
            credit_limit,
            marketing_opt_in,
            {'street': CAST(1 + h(k, 'street_no', 240) AS VARCHAR) || ' '
                       || pick(['Main Street', 'High Street', 'Station Road', 'Park Avenue', 'Church Lane', 'Market Square', 'River Road', 'Harbour Way'], k, 'street'),
             'city': city, 'postcode': postcode, 'country': country} AS address,
            CAST(signup_date AS TIMESTAMP) + to_seconds(CAST(seconds_available - h(k, 'upd', seconds_available) // 4 AS BIGINT)) AS updated_at,
            1 AS version
        FROM gen_customers
        UNION ALL
        SELECT
            customer_id,
            first_name,
            last_name,
            clean_email AS email,
            NULL AS phone,
            'consumer' AS segment,
            signup_date,
            CAST(credit_limit / 2 AS DECIMAL(12, 2)) AS credit_limit,
            NOT marketing_opt_in AS marketing_opt_in,
            {'street': 'Old Mill Road 1', 'city': city, 'postcode': postcode, 'country': country} AS address,
            CAST(signup_date AS TIMESTAMP) + to_seconds(CAST(h(k, 'upd_old', greatest(seconds_available // 2, 1)) AS BIGINT)) AS updated_at,
            0 AS version
        FROM gen_customers
        WHERE has_old_version
    )
    ORDER BY customer_id, version
) TO '{{dir}}/domains/customers/data/customers.json' (FORMAT json);

-- Product catalog: a fixed reference table of 400 products.
CREATE TABLE gen_products AS
WITH base AS (
    SELECT
        p + 1 AS product_id,
        h(p, 'category', 8) AS cat_idx,
        p
    FROM range(getvariable('n_products')) r(p)
),
priced AS (
    SELECT
        b.*,
        ['Electronics', 'Home', 'Garden', 'Toys', 'Sports', 'Books', 'Beauty', 'Grocery'][b.cat_idx + 1] AS category,
        [[120, 900], [15, 250], [10, 300], [8, 120], [12, 400], [6, 45], [5, 90], [2, 30]][b.cat_idx + 1] AS price_band
    FROM base b
)
SELECT
    product_id,
    'SKU-' || lpad(CAST(product_id AS VARCHAR), 5, '0') AS sku,
    pick(['Classic', 'Pro', 'Eco', 'Smart', 'Compact', 'Deluxe', 'Essential', 'Ultra', 'Nordic', 'Urban'], p, 'adj') || ' '
        || pick(CASE category
                    WHEN 'Electronics' THEN ['Headphones', 'Speaker', 'Tablet', 'Monitor', 'Camera', 'Router']
                    WHEN 'Home' THEN ['Lamp', 'Kettle', 'Blanket', 'Vase', 'Chair', 'Shelf']
                    WHEN 'Garden' THEN ['Hose', 'Planter', 'Shears', 'Grill', 'Lantern', 'Bench']
                    WHEN 'Toys' THEN ['Puzzle', 'Robot', 'Kite', 'Blocks', 'Doll', 'Train Set']
                    WHEN 'Sports' THEN ['Yoga Mat', 'Racket', 'Bottle', 'Backpack', 'Helmet', 'Dumbbell']
                    WHEN 'Books' THEN ['Cookbook', 'Novel', 'Atlas', 'Notebook', 'Guide', 'Anthology']
                    WHEN 'Beauty' THEN ['Serum', 'Shampoo', 'Soap', 'Lotion', 'Brush', 'Perfume']
                    ELSE ['Coffee', 'Tea', 'Olive Oil', 'Chocolate', 'Granola', 'Honey'] END, p, 'noun')
        || ' ' || CAST(100 + h(p, 'model', 900) AS VARCHAR) AS product_name,
    category,
    CAST(price_band[1] + h(p, 'price', price_band[2] - price_band[1]) + 0.99 AS DECIMAL(10, 2)) AS list_price,
    35 + h(p, 'costpct', 40) AS cost_pct,
    DATE '2015-01-01' + CAST(h(p, 'launch', 3469) AS INTEGER) AS launched_on,
    h(p, 'active', 100) >= 5 AS is_active
FROM priced;

COPY (
    SELECT product_id, sku, product_name, category, list_price,
           CAST(list_price * cost_pct / 100 AS DECIMAL(10, 2)) AS unit_cost,
           launched_on, is_active
    FROM gen_products
    ORDER BY product_id
) TO '{{dir}}/domains/sales/data/products.csv' (HEADER, DELIMITER ',');

-- Orders: ids increase with time, the customer of an order had signed up by the order date
-- (customer ids increase with signup date, and only the first N(d) customers are drawn on day d).
CREATE TABLE gen_orders AS
WITH base AS (
    SELECT
        o,
        1000001 + o AS order_id,
        CAST((o * 730) // getvariable('n_orders') AS INTEGER) AS d,
        1 + h(o, 'nlines', 7) AS n_lines,
        pick(['web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web', 'web',
              'mobile', 'mobile', 'mobile', 'mobile', 'mobile', 'store', 'store', 'partner'], o, 'channel') AS channel,
        h(o, 'status', 1000) AS status_roll
    FROM range(getvariable('n_orders')) r(o)
)
SELECT
    b.*,
    DATE '2024-07-01' + b.d AS order_date,
    1 + h(b.o, 'customer',
          getvariable('n_old_customers')
          + least(getvariable('n_new_customers'), ((b.d + 1) * getvariable('n_new_customers') + 729) // 730)) AS customer_id
FROM base b;

-- Shipments: every order that is not cancelled and older than three days ships, one order in ten
-- with two or more lines ships in two parcels. Deliveries after the end of the window are still
-- in transit.
CREATE TABLE gen_shipments AS
WITH shippable AS (
    SELECT o.*, c.country, c.slot
    FROM gen_orders o
    JOIN gen_customers c ON c.customer_id = o.customer_id
    WHERE o.status_roll >= 30 AND o.d < 727
),
parcels AS (
    SELECT s.*, p.parcel
    FROM shippable s
    JOIN range(1, 3) p(parcel)
      ON p.parcel = 1 OR (h(s.o, 'split', 10) = 0 AND s.n_lines >= 2)
),
planned AS (
    SELECT
        p.*,
        p.order_id * 10 + p.parcel AS shipment_id,
        pick(['standard', 'standard', 'standard', 'standard', 'standard', 'standard', 'standard',
              'express', 'express', 'economy'], p.order_id * 10 + p.parcel, 'service') AS service_level,
        CASE WHEN p.country IN ('US') THEN pick(['UPS', 'FedEx', 'USPS'], p.order_id * 10 + p.parcel, 'carrier')
             WHEN p.country IN ('JP', 'AU', 'SG') THEN pick(['DHL', 'FedEx'], p.order_id * 10 + p.parcel, 'carrier')
             WHEN p.country IN ('BR', 'MX') THEN pick(['DHL', 'FedEx', 'UPS'], p.order_id * 10 + p.parcel, 'carrier')
             ELSE pick(['DHL', 'DPD', 'PostNL', 'UPS'], p.order_id * 10 + p.parcel, 'carrier') END AS carrier,
        CASE WHEN p.country IN ('US') THEN pick(['NJ-1', 'TX-1', 'NV-1'], p.order_id, 'wh')
             WHEN p.country IN ('JP', 'AU', 'SG') THEN 'SIN-1'
             WHEN p.country IN ('BR', 'MX') THEN 'MEX-1'
             ELSE pick(['AMS-1', 'FRA-1'], p.order_id, 'wh') END AS warehouse
    FROM parcels p
),
timed AS (
    SELECT
        pl.*,
        CAST(pl.order_date AS TIMESTAMP) + to_seconds(6 * 3600 + h(pl.shipment_id, 'ship', 86400)) AS shipped_at,
        CASE pl.service_level WHEN 'express' THEN 3 WHEN 'standard' THEN 6 ELSE 11 END AS promised_days,
        CASE pl.service_level WHEN 'express' THEN 1 + h(pl.shipment_id, 'transit', 2)
                              WHEN 'standard' THEN 2 + h(pl.shipment_id, 'transit', 4)
                              ELSE 4 + h(pl.shipment_id, 'transit', 6) END
            + CASE WHEN h(pl.shipment_id, 'late', 100) < 6 THEN 1 + h(pl.shipment_id, 'delay', 4) ELSE 0 END AS transit_days
    FROM planned pl
)
SELECT
    t.*,
    CASE WHEN t.shipped_at + to_seconds(t.transit_days * 86400 + h(t.shipment_id, 'deliver', 36000)) <= TIMESTAMP '2026-06-30 23:59:59'
         THEN t.shipped_at + to_seconds(t.transit_days * 86400 + h(t.shipment_id, 'deliver', 36000)) END AS delivered_at,
    round(0.3 + h(t.shipment_id, 'weight', 2500) / 100.0, 2) AS weight_kg,
    CASE t.carrier WHEN 'UPS' THEN '1Z' WHEN 'FedEx' THEN 'FX' WHEN 'USPS' THEN '94'
                   WHEN 'DHL' THEN 'JD' WHEN 'DPD' THEN 'DP' ELSE '3S' END AS carrier_code
FROM timed t;

-- Order status as the order system reports it, consistent with the shipments.
CREATE TABLE gen_order_status AS
SELECT
    o.order_id,
    CASE WHEN o.status_roll < 30 THEN 'cancelled'
         WHEN o.d >= 727 THEN 'open'
         WHEN bool_or(s.delivered_at IS NULL) THEN 'shipped'
         WHEN o.status_roll < 50 THEN 'returned'
         ELSE 'completed' END AS order_status
FROM gen_orders o
LEFT JOIN gen_shipments s ON s.order_id = o.order_id
GROUP BY o.order_id, o.status_roll, o.d;

COPY (
    SELECT
        s.shipment_id,
        s.order_id,
        s.parcel AS parcel_number,
        s.warehouse,
        s.carrier,
        s.service_level,
        s.country AS destination_country,
        s.shipped_at,
        s.delivered_at,
        s.order_date + s.promised_days AS promised_date,
        CASE WHEN s.delivered_at IS NULL THEN 'in_transit'
             WHEN st.order_status = 'returned' THEN 'returned'
             ELSE 'delivered' END AS status,
        s.weight_kg,
        CAST(CASE s.service_level WHEN 'express' THEN 12.50 WHEN 'standard' THEN 4.90 ELSE 2.90 END
             + s.weight_kg * CASE s.service_level WHEN 'express' THEN 1.10 ELSE 0.45 END AS DECIMAL(10, 2)) AS shipping_cost,
        s.carrier_code || lpad(CAST((s.shipment_id * 2654435761) % 9999999967 AS VARCHAR), 10, '0') AS tracking_number
    FROM gen_shipments s
    JOIN gen_order_status st ON st.order_id = s.order_id
    ORDER BY s.shipment_id
) TO '{{dir}}/domains/logistics/data/shipments.parquet' (FORMAT parquet);

-- Order lines: the web shop export. Dates are day/month/year, one line in 500 is a voided line
-- with quantity 0 that the sales pipeline drops.
COPY (
    SELECT
        o.order_id,
        n.line_number,
        strftime(o.order_date, '%d/%m/%Y') AS order_date,
        o.customer_id,
        p.sku,
        CASE WHEN h(o.order_id * 10 + n.line_number, 'void', 500) = 0 THEN 0
             ELSE 1 + h(o.order_id * 10 + n.line_number, 'qty', 4) * h(o.order_id * 10 + n.line_number, 'qty2', 2)
                  + h(o.order_id * 10 + n.line_number, 'qty3', 2) END AS quantity,
        p.list_price AS unit_price,
        pick([0, 0, 0, 0, 0, 0, 5, 5, 10, 10, 15, 20], o.order_id * 10 + n.line_number, 'discount') AS discount_pct,
        o.channel,
        st.order_status,
        'EUR' AS currency
    FROM gen_orders o
    JOIN range(1, 8) n(line_number) ON n.line_number <= o.n_lines
    JOIN gen_order_status st ON st.order_id = o.order_id
    JOIN gen_products p
      ON p.product_id = 1 + least(h(o.order_id * 10 + n.line_number, 'p1', getvariable('n_products')),
                                  h(o.order_id * 10 + n.line_number, 'p2', getvariable('n_products')))
    ORDER BY o.order_id, n.line_number
) TO '{{dir}}/domains/sales/data/order_lines.csv' (HEADER, DELIMITER ',');
