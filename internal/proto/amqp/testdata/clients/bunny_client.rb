# Drives Ferry's AMQP front end with Bunny, Ruby's RabbitMQ client (the
# one under Sneakers and Hutch; Debian's ruby-bunny).
#
# Run by TestBunnyClient (clients_test.go) as: ruby bunny_client.rb URL.
# Each check prints "ok NAME"; the Go test requires every name it knows.
# Any exception exits non-zero.
require "bunny"
require "securerandom"

URL = ARGV.fetch(0)
RUN = SecureRandom.hex(4)
$stdout.sync = true

def ok(name) = puts("ok #{name}")

def expect(cond, what)
  raise what unless cond
end

def name(s) = "bunny-#{s}-#{RUN}"

conn = Bunny.new(URL, frame_max: 8192, heartbeat: 20, automatically_recover: false, logger: Logger.new(nil))
conn.start
expect(conn.server_properties["product"] == "Ferry", "product #{conn.server_properties['product']}")
expect(conn.frame_max == 8192 && conn.heartbeat == 20, "tune #{conn.frame_max} #{conn.heartbeat}")
ok "negotiation"

begin
  Bunny.new(URL.sub("guest:guest", "guest:wrong"), logger: Logger.new(nil), automatically_recover: false).start
  raise "a wrong password connected"
rescue Bunny::AuthenticationFailureError, Bunny::PossibleAuthenticationFailureError
end
ok "wrong-password"

# Content: the field types Bunny writes, every property, a body in frames
# of 8 KiB, confirmed.
ch = conn.create_channel
ch.confirm_select
q = ch.queue("", exclusive: true)
expect(q.name.start_with?("amq.gen-"), "server-named queue #{q.name}")
headers = { "str" => "s", "int" => 42, "long" => 2**40, "float" => 1.5, "bool" => true, "void" => nil,
            "list" => [1, "a", { "k" => false }], "table" => { "k" => "v" }, "time" => Time.at(1_600_000_000) }
body = "ab" * 50_000
ch.default_exchange.publish(body, routing_key: q.name, persistent: true, headers: headers, content_type: "text/plain",
                            content_encoding: "utf-8", priority: 3, message_id: "mid", timestamp: 1_600_000_000,
                            type: "kind", app_id: "app", correlation_id: "corr", reply_to: "reply",
                            expiration: "60000", user_id: "guest")
expect(ch.wait_for_confirms, "publish nacked")
_, props, got = q.pop
expect(got == body, "body of #{got&.size} bytes")
expect([props.content_type, props.content_encoding, props.delivery_mode, props.priority, props.message_id,
        props.type, props.app_id, props.correlation_id, props.reply_to, props.expiration, props.user_id] ==
       ["text/plain", "utf-8", 2, 3, "mid", "kind", "app", "corr", "reply", "60000", "guest"], "properties #{props.inspect}")
expect(props.timestamp == Time.at(1_600_000_000), "timestamp #{props.timestamp}")
expect(props.headers == headers, "headers #{props.headers.inspect}")
ok "content"

full = ch.queue(name("full"), auto_delete: true, arguments: { "x-max-length" => 1, "x-overflow" => "reject-publish" })
ch.default_exchange.publish("first", routing_key: full.name)
ch.default_exchange.publish("second", routing_key: full.name)
expect(!ch.wait_for_confirms && ch.nacked_set.size == 1, "nacked #{ch.nacked_set.to_a}")
full.delete
ok "confirm-nack"

# A worker with prefetch and manual acks behind a topic exchange.
x = ch.topic(name("topic"), auto_delete: true)
wq = ch.queue(name("work"), auto_delete: true).bind(x, routing_key: "jobs.#")
20.times { |i| x.publish(i.to_s, routing_key: "jobs.#{i.even? ? 'even' : 'odd'}") }
x.publish("missed", routing_key: "other")
ch2 = conn.create_channel
ch2.prefetch(5)
seen = Queue.new
consumer = ch2.queue(wq.name, passive: true).subscribe(manual_ack: true) do |d, _, b|
  seen << b
  ch2.ack(d.delivery_tag)
end
bodies = Array.new(20) { Timeout.timeout(10) { seen.pop } }
expect(bodies == (0...20).map(&:to_s), "consumed #{bodies}")
consumer.cancel
ok "consume"

begin
  conn.create_channel.queue(name("missing"), passive: true)
  raise "passive declare of a missing queue succeeded"
rescue Bunny::NotFound
end
expect(ch.queue(q.name, passive: true).message_count == 0, "queue")
conn.close
ok "close"

# Automatic recovery, Bunny's default: when the broker closes the
# connection, Bunny reconnects and declares its queue, binding and
# consumer again.
recovered = Queue.new
rc = Bunny.new(URL, network_recovery_interval: 0.1, logger: Logger.new(nil))
rc.after_recovery_completed { recovered << true }
rc.start
rch = rc.create_channel
rx = rch.fanout(name("recovery"), auto_delete: true)
rq = rch.queue("", exclusive: true).bind(rx)
rgot = Queue.new
rq.subscribe { |_, _, b| rgot << b }
rx.publish("before")
expect(Timeout.timeout(10) { rgot.pop } == "before", "nothing before the close")
ok "ready-for-close" # the Go test closes every connection now
Timeout.timeout(30) { recovered.pop }
rx.publish("after")
expect(Timeout.timeout(10) { rgot.pop } == "after", "nothing after recovery")
rc.close
ok "recovery"
