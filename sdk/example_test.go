package ferry_test

import (
	"context"
	"fmt"
	"log"
	"os"

	ferry "github.com/ferry-mq/ferry/sdk"
)

// Embed a broker, publish to a queue and consume from it.
func Example() {
	dir, err := os.MkdirTemp("", "ferry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := ferry.NewServer(ferry.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	c, err := srv.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.DeclareQueue(ctx, "jobs"); err != nil {
		log.Fatal(err)
	}
	// Publish returns once the message is durable.
	if err := c.Publish(ctx, "", "jobs", ferry.Message{Body: []byte("resize image 42")}); err != nil {
		log.Fatal(err)
	}
	consumer, err := c.Consume(ctx, "jobs", 10)
	if err != nil {
		log.Fatal(err)
	}
	d, err := consumer.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(d.Body))
	if err := d.Ack(); err != nil {
		log.Fatal(err)
	}
	// Output: resize image 42
}
