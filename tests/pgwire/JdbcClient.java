// PostgreSQL's JDBC driver (Debian's libpostgresql-jdbc-java) against `canopy serve
// --pg-listen`: what DBeaver, Metabase and other JDBC tools do on connect and when
// browsing (DatabaseMetaData), then governed reads through prepared statements,
// server-side prepared (binary results) and fetched in steps (portals with a row limit).
//
//   java -cp /usr/share/java/postgresql.jar JdbcClient.java PORT USER TOKEN OTHER_USER OTHER_TOKEN
//
// Prints one line per check, "ok <what>" or "FAIL <what>: <why>", and exits 1 when any
// failed. OTHER_USER may not read crm.customers.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class JdbcClient {
  static int failed = 0;

  static void check(String what, boolean condition, Object why) {
    System.out.println((condition ? "ok " : "FAIL ") + what + (condition ? "" : ": " + why));
    if (!condition) failed++;
  }

  static Connection connect(String port, String user, String token, String threshold)
      throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", user);
    p.setProperty("password", token);
    p.setProperty("sslmode", "disable");
    p.setProperty("connectTimeout", "10");
    p.setProperty("socketTimeout", "60");
    p.setProperty("prepareThreshold", threshold);
    return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/govtest", p);
  }

  static List<String> column(ResultSet r, String name) throws SQLException {
    List<String> values = new ArrayList<>();
    try (r) {
      while (r.next()) values.add(r.getString(name));
    }
    return values;
  }

  public static void main(String[] args) throws Exception {
    String port = args[0];
    try (Connection c = connect(port, args[1], args[2], "1")) {
      DatabaseMetaData md = c.getMetaData();
      check("the server says what it is",
          md.getDatabaseProductName().equals("PostgreSQL")
              && md.getDatabaseProductVersion().contains("Canopy"),
          md.getDatabaseProductVersion());
      List<String> schemas = column(md.getSchemas(), "TABLE_SCHEM");
      check("each domain is a schema", schemas.contains("crm") && schemas.contains("sales"),
          schemas);
      List<String> tables = column(md.getTables(null, null, "%", new String[] {"TABLE"}),
          "TABLE_NAME");
      check("the ports are tables", tables.contains("customers") && tables.contains("orders"),
          tables);
      check("a private product stays invisible", !tables.contains("salaries"), tables);
      List<String> names = new ArrayList<>();
      List<String> types = new ArrayList<>();
      int idType = Types.NULL;
      try (ResultSet r = md.getColumns(null, "crm", "customers", "%")) {
        while (r.next()) {
          names.add(r.getString("COLUMN_NAME"));
          types.add(r.getString("TYPE_NAME"));
          if (r.getString("COLUMN_NAME").equals("id")) idType = r.getInt("DATA_TYPE");
        }
      }
      check("a port's columns, in order, with their types",
          names.size() >= 3 && names.get(0).equals("id") && names.contains("email")
              && types.get(names.indexOf("email")).equals("text"),
          names + " " + types);
      check("an integer column is an integer to JDBC",
          idType == Types.BIGINT || idType == Types.INTEGER || idType == Types.SMALLINT, idType);

      // What a tool asks of a table it shows (Metabase: keys; DBeaver: indexes too): no
      // keys or indexes, said without an error.
      String step = "";
      try {
        step = "getPrimaryKeys";
        column(md.getPrimaryKeys(null, "crm", "customers"), "COLUMN_NAME");
        step = "getIndexInfo";
        column(md.getIndexInfo(null, "crm", "customers", false, true), "INDEX_NAME");
        step = "getImportedKeys";
        column(md.getImportedKeys(null, "crm", "customers"), "FKCOLUMN_NAME");
        step = "getExportedKeys";
        column(md.getExportedKeys(null, "crm", "customers"), "FKCOLUMN_NAME");
        step = "getBestRowIdentifier";
        column(md.getBestRowIdentifier(null, "crm", "customers", 0, true), "COLUMN_NAME");
        step = "getFunctions";
        column(md.getFunctions(null, "crm", "%"), "FUNCTION_NAME");
        check("keys, indexes and functions are asked without an error", true, "");
      } catch (SQLException e) {
        check("keys, indexes and functions are asked without an error", false,
            step + ": " + e.getMessage());
      }
      List<String> typeNames = column(md.getTypeInfo(), "TYPE_NAME");
      check("the types PostgreSQL's drivers know",
          typeNames.contains("int8") && typeNames.contains("numeric")
              && typeNames.contains("timestamptz"),
          typeNames);

      // Server-side prepared from the first run (prepareThreshold=1): binary results.
      try (PreparedStatement s = c.prepareStatement(
               "select id, email, region from crm.customers where region = ? order by id")) {
        for (int run = 1; run <= 3; run++) {
          s.setString(1, "EU");
          List<Long> ids = new ArrayList<>();
          List<String> emails = new ArrayList<>();
          try (ResultSet r = s.executeQuery()) {
            while (r.next()) {
              ids.add(r.getLong("id"));
              emails.add(r.getString("email"));
            }
          }
          check("a prepared statement, run " + run, ids.equals(List.of(1L, 3L)), ids);
          check("masked values, run " + run,
              emails.stream().allMatch(e -> e.startsWith("h_") && !e.contains("@")), emails);
        }
      }
      c.setAutoCommit(false);  // so the driver fetches in steps: Execute with a row limit
      try (Statement s = c.createStatement()) {
        s.setFetchSize(100);
        long n = 0;
        long sum = 0;
        try (ResultSet r = s.executeQuery("select i from range(1000) t(i)")) {
          while (r.next()) {
            n++;
            sum += r.getLong(1);
          }
        }
        check("a result fetched 100 rows at a time", n == 1000 && sum == 499500, n + " " + sum);
      }
      c.commit();
    }
    try (Connection c = connect(port, args[3], args[4], "5");
         Statement s = c.createStatement()) {
      s.executeQuery("select email from crm.customers");
      check("a denied read is refused", false, "it ran");
    } catch (SQLException e) {
      check("a denied read is refused with 42501", "42501".equals(e.getSQLState()),
          e.getSQLState() + " " + e.getMessage());
    }
    System.exit(failed == 0 ? 0 : 1);
  }
}
