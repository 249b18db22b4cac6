package deps

import (
	_ "github.com/andybalholm/brotli"
	_ "github.com/bojanz/currency"
	_ "github.com/chromedp/chromedp"
	_ "github.com/evanw/esbuild/pkg/api"
	_ "github.com/gofiber/fiber/v2"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/stripe/stripe-go/v85/webhook"
	_ "github.com/ulule/limiter/v3"
	_ "github.com/ulule/limiter/v3/drivers/store/memory"
	_ "github.com/gofiber/fiber/v2/middleware/adaptor"
)
