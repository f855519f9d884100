/// A whole nginx.conf that proxies to Galley as the README configures it (its `upstream` and
/// `server` blocks), for the integration tests and the benchmarks.
public enum NginxConfiguration {
    /// nginx in the foreground, its files under `prefix`, listening on `listen` and passing every
    /// request to `servers` (`unix:/path` or `127.0.0.1:9000`) in turn, with `keepalive` idle
    /// connections to them.
    public static func text(
        prefix: String,
        servers: [String],
        listen: String,
        keepalive: Int = 16,
        workerConnections: Int = 256
    ) -> String {
        """
        daemon off;
        worker_processes 1;
        # An unprivileged worker, as in production: galley's --socket-mode 666 lets it connect.
        user nobody nogroup;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/error.log;
        events { worker_connections \(workerConnections); }
        http {
            access_log off;
            client_body_temp_path \(prefix)/body;
            proxy_temp_path \(prefix)/proxy;
            fastcgi_temp_path \(prefix)/fastcgi;
            uwsgi_temp_path \(prefix)/uwsgi;
            scgi_temp_path \(prefix)/scgi;
            upstream galley {
        \(servers.map { "        server \($0);" }.joined(separator: "\n"))
                keepalive \(keepalive);
            }
            server {
                listen \(listen);
                client_max_body_size 6m;
                location / {
                    proxy_pass http://galley;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Host $host;
                    proxy_read_timeout 900s;
                }
            }
        }
        """
    }
}
