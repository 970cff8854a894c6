package dealroom.testenv;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;

/**
 * Starts an in-memory mongo-java-server for Dealroom's tests.
 *
 * <p>Usage: {@code java -jar mongo-java-server-testenv.jar [--host H] [--port N]
 * [--version 3.6|4.0|5.0] [--oplog] [--ignore-stdin]}
 *
 * <p>Defaults: host 127.0.0.1, port 0 (the kernel picks a free port), version 3.6,
 * no oplog ({@code --oplog} enables mongo-java-server's experimental oplog, which
 * change streams need).
 * Once the server accepts connections, exactly one line is printed on stdout:
 * {@code LISTENING <host>:<port>}. Everything else (logs, errors) goes to stderr.
 *
 * <p>The server stops and the JVM exits when stdin reaches end-of-file (that is,
 * when the parent process closes the pipe or dies) unless {@code --ignore-stdin}
 * is given, and on SIGTERM/SIGINT.
 */
public final class MongoJavaServerMain {

    private MongoJavaServerMain() {
    }

    public static void main(String[] args) {
        // Configure slf4j-simple before any logger is created: warnings and
        // errors only, on stderr (stdout carries the LISTENING line).
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");

        String host = "127.0.0.1";
        int port = 0;
        ServerVersion version = ServerVersion.MONGO_3_6;
        boolean watchStdin = true;
        boolean oplog = false;

        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--host" -> host = value(args, ++i, arg);
                case "--port" -> port = parsePort(value(args, ++i, arg));
                case "--version" -> version = parseVersion(value(args, ++i, arg));
                case "--ignore-stdin" -> watchStdin = false;
                case "--oplog" -> oplog = true;
                case "-h", "--help" -> {
                    System.err.println("usage: mongo-java-server-testenv [--host H] [--port N] "
                            + "[--version 3.6|4.0|5.0] [--oplog] [--ignore-stdin]");
                    System.exit(0);
                }
                default -> fail("unknown argument: " + arg);
            }
        }

        MemoryBackend backend = new MemoryBackend();
        backend.version(version);
        MongoServer server = new MongoServer(backend);
        if (oplog) {
            server.enableOplog();
        }
        try {
            server.bind(host, port);
        } catch (RuntimeException e) {
            System.err.println("mongo-java-server: cannot bind " + host + ":" + port + ": " + e);
            System.exit(3);
        }

        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "mongo-shutdown"));

        InetSocketAddress addr = server.getLocalAddress();
        PrintStream out = System.out;
        out.println("LISTENING " + addr.getAddress().getHostAddress() + ":" + addr.getPort());
        out.flush();

        if (watchStdin) {
            Thread watcher = new Thread(() -> {
                drain(System.in);
                // Parent closed the pipe or went away: stop (shutdown hook runs).
                System.exit(0);
            }, "stdin-watcher");
            watcher.setDaemon(true);
            watcher.start();
        }
        // Netty's event loop threads are non-daemon: the JVM keeps running
        // until System.exit (stdin EOF) or a signal.
    }

    private static void drain(InputStream in) {
        byte[] buf = new byte[256];
        try {
            while (in.read(buf) >= 0) {
                // Ignore input; we only wait for end-of-file.
            }
        } catch (IOException e) {
            // Treat a broken stdin like end-of-file.
        }
    }

    private static String value(String[] args, int i, String flag) {
        if (i >= args.length) {
            fail("missing value for " + flag);
        }
        return args[i];
    }

    private static int parsePort(String s) {
        try {
            int p = Integer.parseInt(s);
            if (p < 0 || p > 65535) {
                fail("port out of range: " + s);
            }
            return p;
        } catch (NumberFormatException e) {
            fail("invalid port: " + s);
            return -1;
        }
    }

    private static ServerVersion parseVersion(String s) {
        return switch (s) {
            case "3.6" -> ServerVersion.MONGO_3_6;
            case "4.0" -> ServerVersion.MONGO_4_0;
            case "5.0" -> ServerVersion.MONGO_5_0;
            default -> {
                fail("unsupported --version " + s + " (want 3.6, 4.0 or 5.0)");
                yield null;
            }
        };
    }

    private static void fail(String msg) {
        System.err.println("mongo-java-server: " + msg);
        System.exit(2);
    }
}
